# `make install` (cmake --install) and `make deb` (CPack DEB): the binary,
# the man page tagproc(1), bash completion, examples, docs, systemd units and,
# for the package, /etc/tagproc/tagproc.yaml (a conffile: the simulator example).
include(GNUInstallDirs)
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON) # install/package need tagproc, not the tests

set(TP_BINDIR ${CMAKE_INSTALL_FULL_BINDIR})
set(TP_SYSCONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}) # /etc when the prefix is /usr
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(TP_UNITDIR /lib/systemd/system) # Debian 12's place for packaged units
else()
  set(TP_UNITDIR ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
foreach(unit tagproc.service tagproc@.service)
  configure_file(${CMAKE_SOURCE_DIR}/packaging/${unit}.in ${CMAKE_BINARY_DIR}/${unit} @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/${unit} DESTINATION ${TP_UNITDIR})
endforeach()

install(TARGETS tagproc RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES docs/tagproc.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES packaging/tagproc.bash-completion DESTINATION
  ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME tagproc)
file(GLOB TP_EXAMPLES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/examples/*.yaml)
install(FILES ${TP_EXAMPLES} DESTINATION ${CMAKE_INSTALL_DATADIR}/tagproc/examples)
file(GLOB TP_DOCS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/docs/*.md)
install(FILES README.md ${TP_DOCS} DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES examples/opcua-simulator.yaml DESTINATION ${TP_SYSCONFDIR}/tagproc
  RENAME tagproc.yaml)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tagproc)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "tagproc maintainers <tagproc@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "stream processor for industrial tag data (JavaScript rules, MQTT/Kafka/NATS, UNS)")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON) # Depends: from the Debian libraries it links
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_SOURCE_DIR}/packaging/debian/conffiles ${CMAKE_SOURCE_DIR}/packaging/debian/postinst
  ${CMAKE_SOURCE_DIR}/packaging/debian/prerm ${CMAKE_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
