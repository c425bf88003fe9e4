# cmake -DPROGRAM=<path> -DARG=<--help-man|--help-bash-completion> -DOUT=<file> [-DGZIP=ON] -P cmake/generated_help.cmake
# Runs `<program> ARG` (the manual page, or the bash completion, from the program's own option tables:
# base/program) and writes its output to OUT; with GZIP, OUT ends in .gz and is gzipped (-n: no name or
# time in the header, so the .deb is reproducible).
execute_process(COMMAND "${PROGRAM}" "${ARG}" OUTPUT_VARIABLE text RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR text STREQUAL "")
  message(FATAL_ERROR "generated_help.cmake: ${PROGRAM} ${ARG} failed (${rc})")
endif()
if(NOT GZIP)
  file(WRITE "${OUT}" "${text}")
  return()
endif()
string(REGEX REPLACE "\\.gz$" "" plain "${OUT}")
file(WRITE "${plain}" "${text}")
execute_process(COMMAND gzip -9 -n -f "${plain}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "generated_help.cmake: gzip ${plain} failed")
endif()
