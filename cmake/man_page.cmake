# cmake -DPROGRAM=<path> -DOUT=<file.N.gz> -P cmake/man_page.cmake
# Runs `<program> --help-man` (the manual page from the program's own option tables, base/program) and
# writes it gzipped (-n: no name or time in the header, so the .deb is reproducible).
execute_process(COMMAND "${PROGRAM}" --help-man OUTPUT_VARIABLE roff RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR roff STREQUAL "")
  message(FATAL_ERROR "man_page.cmake: ${PROGRAM} --help-man failed (${rc})")
endif()
string(REGEX REPLACE "\\.gz$" "" plain "${OUT}")
file(WRITE "${plain}" "${roff}")
execute_process(COMMAND gzip -9 -n -f "${plain}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "man_page.cmake: gzip ${plain} failed")
endif()
