# Installation and the Debian package (docs/ARCHITECTURE.md, "Running as a service").
#
# The install tree is the package's file system tree: the default prefix is "/", where GNUInstallDirs
# gives usr/bin, usr/share, usr/share/man and etc (its documented special case for the root prefix),
# so `cmake --install build/ci --prefix P` lays out P/usr/bin/hsmauditd, P/etc/hsmaudit/hsmauditd.yaml,
# P/usr/lib/systemd/system/... exactly as the .deb installs them, and cpack packages that tree
# (CPACK_PACKAGING_INSTALL_PREFIX "/"). Tests, benchmarks and fuzz targets are not installed.
#
# The package: `cpack --config build/ci/CPackConfig.cmake -B build/ci` (or the `package` target) writes
# build/ci/hsmaudit_<debian version>_<arch>.deb. Its version comes from base/version (git describe) at
# cpack time (packaging/cpack_project.cmake), so a commit needs no re-configure.
if(CMAKE_INSTALL_PREFIX_INITIALIZED_TO_DEFAULT)
  set(CMAKE_INSTALL_PREFIX "/" CACHE PATH "Install prefix: / installs the package's tree (usr/bin, etc, ...)" FORCE)
endif()
include(GNUInstallDirs)
set(CMAKE_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
# /usr/lib (not the multiarch libdir) holds systemd's units, sysusers.d and tmpfiles.d.
if(CMAKE_INSTALL_PREFIX STREQUAL "/")
  set(hsmaudit_usr_lib "usr/lib")
else()
  set(hsmaudit_usr_lib "lib")
endif()
set(HSMAUDIT_INSTALL_UNITDIR "${hsmaudit_usr_lib}/systemd/system")
set(HSMAUDIT_INSTALL_DOCDIR "${CMAKE_INSTALL_DATADIR}/doc/hsmaudit")

# Programs. They carry the build's version (git describe: base/version/CMakeLists.txt); tests and tools
# the project VERSION, so that a commit relinks these three only.
set_target_properties(hsmauditd hsmaudit hsmcore PROPERTIES HSMAUDIT_RELEASE_PROGRAM ON)
# Full RELRO (lintian's hardening-no-bindnow): relocations resolved at start, then read-only.
foreach(prog hsmauditd hsmaudit hsmcore)
  target_link_options(${prog} PRIVATE "LINKER:-z,relro,-z,now")
endforeach()
install(TARGETS hsmauditd hsmaudit hsmcore RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")

# Manual pages and bash completions, generated from the programs' option tables (base/program/program.h)
# after they link: build/man/<prog>.<section>.gz, build/completions/<prog>.
set(man_dir "${CMAKE_BINARY_DIR}/man")
set(completion_dir "${CMAKE_BINARY_DIR}/completions")
file(MAKE_DIRECTORY "${man_dir}" "${completion_dir}")
set(generated_help "")
set(help_script "${HSMAUDIT_ROOT}/cmake/generated_help.cmake")
foreach(page hsmauditd:8 hsmaudit:1 hsmcore:8)
  string(REPLACE ":" ";" parts "${page}")
  list(GET parts 0 prog)
  list(GET parts 1 section)
  set(man "${man_dir}/${prog}.${section}.gz")
  add_custom_command(OUTPUT "${man}"
    COMMAND "${CMAKE_COMMAND}" -DPROGRAM=$<TARGET_FILE:${prog}> -DARG=--help-man -DOUT=${man} -DGZIP=ON
            -P "${help_script}"
    DEPENDS ${prog} "${help_script}"
    COMMENT "Manual page ${prog}(${section}) from ${prog} --help-man"
    VERBATIM)
  set(completion "${completion_dir}/${prog}")
  add_custom_command(OUTPUT "${completion}"
    COMMAND "${CMAKE_COMMAND}" -DPROGRAM=$<TARGET_FILE:${prog}> -DARG=--help-bash-completion -DOUT=${completion}
            -P "${help_script}"
    DEPENDS ${prog} "${help_script}"
    COMMENT "Bash completion for ${prog} from ${prog} --help-bash-completion"
    VERBATIM)
  list(APPEND generated_help "${man}" "${completion}")
  install(FILES "${man}" DESTINATION "${CMAKE_INSTALL_MANDIR}/man${section}")
  install(FILES "${completion}" DESTINATION "${CMAKE_INSTALL_DATADIR}/bash-completion/completions")
endforeach()
add_custom_target(man_pages ALL DEPENDS ${generated_help})

# Configuration: the appliance configuration as /etc/hsmaudit/hsmauditd.yaml (a conffile).
install(FILES config/hsmauditd-appliance.yaml DESTINATION "${CMAKE_INSTALL_SYSCONFDIR}/hsmaudit"
        RENAME hsmauditd.yaml)
# systemd: the units, the users (sysusers.d) and the directories (tmpfiles.d).
install(FILES config/hsmauditd.service config/hsmcore.service DESTINATION "${HSMAUDIT_INSTALL_UNITDIR}")
install(FILES config/sysusers.d/hsmaudit.conf DESTINATION "${hsmaudit_usr_lib}/sysusers.d")
install(FILES config/tmpfiles.d/hsmaudit.conf DESTINATION "${hsmaudit_usr_lib}/tmpfiles.d")
# SNMP MIB, Grafana dashboard and provisioning, Prometheus alert rules.
install(FILES config/mibs/HSMAUDIT-MIB.txt DESTINATION "${CMAKE_INSTALL_DATADIR}/snmp/mibs")
install(DIRECTORY dashboards/grafana dashboards/prometheus DESTINATION "${CMAKE_INSTALL_DATADIR}/hsmaudit")
# Documentation: the design and reference documents, example receiver configs, the Debian files.
install(FILES README.md docs/ARCHITECTURE.md docs/CONFIG.md docs/FORMAT.md docs/METRICS.md docs/SIEM.md
              docs/KAFKA.md docs/SNMP.md
        DESTINATION "${HSMAUDIT_INSTALL_DOCDIR}")
install(DIRECTORY config/examples/ DESTINATION "${HSMAUDIT_INSTALL_DOCDIR}/examples")
install(FILES config/hsmauditd.yaml DESTINATION "${HSMAUDIT_INSTALL_DOCDIR}/examples" RENAME hsmauditd-embedded.yaml)
install(FILES packaging/debian/copyright "${CMAKE_BINARY_DIR}/base/version/changelog.Debian.gz"
        DESTINATION "${HSMAUDIT_INSTALL_DOCDIR}")

# The Debian package (CPack DEB). Depends: the shared libraries' packages (dpkg-shlibdeps) and systemd
# (systemd-sysusers, systemd-tmpfiles in postinst).
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "hsmaudit")
set(CPACK_PACKAGE_VENDOR "hsmaudit")
set(CPACK_PACKAGE_CONTACT "hsmaudit maintainers <hsmaudit@example.net>")
set(CPACK_PACKAGING_INSTALL_PREFIX "/")
set(CPACK_STRIP_FILES ON)
set(CPACK_OUTPUT_FILE_PREFIX "${CMAKE_BINARY_DIR}")
set(CPACK_PACKAGE_DIRECTORY "${CMAKE_BINARY_DIR}/_CPack_Packages_root")
set(CPACK_DEBIAN_FILE_NAME "DEB-DEFAULT")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION "admin")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# procps: /bin/kill, which the unit's ExecReload runs (not in a minimal Debian root).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd, procps")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "audit agent of a network HSM appliance
 hsmauditd drains the HSM module's audit NVRAM ring before the module blocks,
 verifies the MAC chain of every record, stores sealed and encrypted segment
 files, and forwards the trail to SIEMs (RELP/TLS, syslog, Kafka, SNMP traps)
 with Prometheus metrics. hsmaudit verifies trails offline and proves single
 records; hsmcore is the module emulator.")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${HSMAUDIT_ROOT}/packaging/debian/conffiles"
    "${HSMAUDIT_ROOT}/packaging/debian/postinst"
    "${HSMAUDIT_ROOT}/packaging/debian/prerm"
    "${HSMAUDIT_ROOT}/packaging/debian/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_PROJECT_CONFIG_FILE "${HSMAUDIT_ROOT}/packaging/cpack_project.cmake")
set(HSMAUDIT_VERSION_FILE "${CMAKE_BINARY_DIR}/base/version/version.cmake")
set(CPACK_HSMAUDIT_VERSION_FILE "${HSMAUDIT_VERSION_FILE}")
include(CPack)
