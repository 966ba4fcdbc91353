#!/usr/bin/env bash
# Installs the real protocol peers the interoperability tests talk to, idempotently:
#   Debian: dcmtk (storescu, echoscu, storescp), curl, chromium (headless, for the docs page test)
#   PyPI (in ./.venv): pynetdicom, pydicom, hl7 (python-hl7), hl7apy, fhir.resources, fhirpy, openapi-spec-validator,
#     dicomweb-client; with XENRAD_ORTHANC=1 also Debian orthanc and orthanc-dicomweb; with XENRAD_BROWSER=1
#     also playwright (the Python package and its driver only: it drives Debian's chromium, no browser download);
#     with XENRAD_POSTGRES=1 also Debian postgresql (the gateway's PostgreSQL backend: scripts/postgres.sh)
#     and with XENRAD_FLEET=1 also haproxy (scripts/fleet.sh)
# Prints the environment the tests read (XENRAD_PEERS, XENRAD_PYTHON, XENRAD_PYDICOM_DATA).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
quiet() { "$@" >/tmp/xenrad-peers.log 2>&1 || { cat /tmp/xenrad-peers.log >&2; return 1; }; }

need_apt=()
command -v storescu >/dev/null 2>&1 || need_apt+=(dcmtk)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
[ -x /usr/bin/time ] || need_apt+=(time) # sender CPU and RSS in benches/dicom/scu.sh
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# Orthanc and its DICOMweb plugin only for the images benchmark (XENRAD_ORTHANC=1).
if [ -n "${XENRAD_ORTHANC:-}" ]; then
  [ -x /usr/sbin/Orthanc ] || need_apt+=(orthanc)
  [ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || need_apt+=(orthanc-dicomweb)
fi
# PostgreSQL for the gateway's PostgreSQL backend (XENRAD_POSTGRES=1), HAProxy for the fleet.
if [ -n "${XENRAD_POSTGRES:-}" ] || [ -n "${XENRAD_FLEET:-}" ]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
fi
if [ -n "${XENRAD_FLEET:-}" ]; then
  command -v haproxy >/dev/null 2>&1 || need_apt+=(haproxy)
fi
if ((${#need_apt[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "peers: apt-get install ${need_apt[*]}" >&2
  quiet $SUDO apt-get update -qq
  quiet env DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "peers: creating $venv" >&2
  quiet python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import pynetdicom, pydicom, hl7, hl7apy, fhir.resources, fhirpy, openapi_spec_validator, dicomweb_client' >/dev/null 2>&1; then
  echo "peers: pip install pynetdicom pydicom hl7 hl7apy fhir.resources fhirpy openapi-spec-validator dicomweb-client" >&2
  quiet "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    'pynetdicom>=2.1' 'pydicom>=3.0' 'hl7>=0.4' 'hl7apy>=1.3' 'fhir.resources>=7' 'fhirpy>=2' 'openapi-spec-validator>=0.7' 'dicomweb-client>=0.59'
fi
# The operator console's browser test (XENRAD_BROWSER=1): Playwright for Python drives Debian's
# chromium (installed above): 170 MB installed (its Node driver included), 15-30 s of pip here. No
# `playwright install`: no browser download.
if [ -n "${XENRAD_BROWSER:-}" ] && ! "$venv/bin/python" -c 'import playwright.sync_api' >/dev/null 2>&1; then
  echo "peers: pip install playwright" >&2
  quiet "$venv/bin/python" -m pip install -q --disable-pip-version-check 'playwright>=1.45'
fi
data="$("$venv/bin/python" -c 'import pydicom.data, os; print(os.path.dirname(pydicom.data.get_testdata_file("CT_small.dcm")))')"
echo "export XENRAD_PEERS=1"
[ -z "${XENRAD_BROWSER:-}" ] || echo "export XENRAD_BROWSER=1"
echo "export XENRAD_PYTHON=$venv/bin/python"
echo "export XENRAD_PYDICOM_DATA=$data"
