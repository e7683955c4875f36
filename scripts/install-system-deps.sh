#!/usr/bin/env bash
# Installs the real DICOM peers the tests and benchmarks talk to: Orthanc with its DICOMweb and
# worklist plugins, DCMTK, and the libraries Qt needs offscreen. Does nothing when all are present.
set -euo pipefail
need=()
command -v /usr/sbin/Orthanc >/dev/null 2>&1 || need+=(orthanc)
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need+=(orthanc-dicomweb)
command -v storescp >/dev/null 2>&1 || need+=(dcmtk)
command -v curl >/dev/null 2>&1 || need+=(curl)
# Qt (PySide6) offscreen still loads these shared libraries.
for lib in libEGL.so.1 libxkbcommon.so.0 libfontconfig.so.1 libdbus-1.so.3 libGL.so.1; do
  ldconfig -p | grep -q "$lib" || { need+=(libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libgl1); break; }
done
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "Installing system packages: ${need[*]}"
$SUDO apt-get update -qq
# The orthanc package tries to start its service; in containers policy-rc.d refuses, which is fine:
# the tests start their own Orthanc on free loopback ports.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
