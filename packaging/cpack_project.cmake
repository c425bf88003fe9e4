# Read by cpack (CPACK_PROJECT_CONFIG_FILE) when it packages: the version of the last build, written by
# cmake/version.cmake (git describe), so the .deb carries the version the binaries print with --version.
if(NOT EXISTS "${CPACK_HSMAUDIT_VERSION_FILE}")
  message(FATAL_ERROR "cpack: ${CPACK_HSMAUDIT_VERSION_FILE} is missing: build first (cmake --build --preset ci)")
endif()
include("${CPACK_HSMAUDIT_VERSION_FILE}")
set(CPACK_PACKAGE_VERSION "${HSMAUDIT_BUILD_VERSION}")
set(CPACK_DEBIAN_PACKAGE_VERSION "${HSMAUDIT_DEBIAN_UPSTREAM_VERSION}")
set(CPACK_DEBIAN_PACKAGE_RELEASE "${HSMAUDIT_DEBIAN_REVISION}")
# One package in the output directory: an older build's .deb would make `apt-get install
# ./build/ci/hsmaudit_*.deb` (README.md) install two versions at once.
file(GLOB old_debs "${CPACK_OUTPUT_FILE_PREFIX}/${CPACK_PACKAGE_NAME}_*.deb")
if(old_debs)
  file(REMOVE ${old_debs})
endif()
