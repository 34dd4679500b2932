#!/usr/bin/env bash
# Build the Linux bundle: build/dist/crypto-terminal/ and a .tar.gz of it beside it.
#
#   build/build.sh          (or `make bundle`)
#
# Uses the project's .venv (created by the Makefile if missing), adds PyInstaller to it, builds
# build/terminal.spec, then runs the bundle's own `selfcheck --gui` headless: a bundle that
# lacks a module, a Qt plugin or a resource file fails the build here, not on a user's desktop.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY=.venv/bin/python
DIST=build/dist
BUNDLE="$DIST/crypto-terminal"

make --no-print-directory .venv/.installed
"$PY" -m pip install --quiet -e ".[build]"

"$PY" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$DIST" --workpath build/work build/terminal.spec

echo "smoke test: $BUNDLE/crypto-terminal-cli selfcheck --gui"
# Offscreen, so the check needs no display; run from elsewhere, so nothing is found by
# accident in the checkout.
(cd /tmp && QT_QPA_PLATFORM=offscreen "$ROOT/$BUNDLE/crypto-terminal-cli" selfcheck --gui)

VERSION="$("$PY" -c 'import terminal; print(terminal.__version__)')"
ARCHIVE="$DIST/crypto-terminal-$VERSION-linux-$(uname -m).tar.gz"
tar -C "$DIST" -czf "$ARCHIVE" crypto-terminal
echo "bundle:  $BUNDLE ($(du -sh "$BUNDLE" | cut -f1))"
echo "archive: $ARCHIVE ($(du -sh "$ARCHIVE" | cut -f1))"
