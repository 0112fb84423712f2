#!/usr/bin/env bash
# install-ort.sh prints the path of an ONNX Runtime 1.24.1 shared library,
# installing it first when needed. `make ort` runs it, and so do `make run`,
# `make test` and `make bench` before they start.
#
# A user's own copy, named by LADDER_ONNXRUNTIME_LIB, takes precedence and is
# used as it is; when the variable names a missing file the script fails
# and says so. Otherwise the library is taken from the npm registry package
# onnxruntime-node@1.24.1 (fetched with `npm pack`, never `npm install`, whose
# postinstall script downloads from elsewhere), checked against a pinned
# sha256 and installed once per user, for every clone of ladder, in
#
#	${XDG_CACHE_HOME:-$HOME/.cache}/ladder/onnxruntime/1.24.1/libonnxruntime.so.1
#
# which is where models.InitRuntime("") looks when neither its argument nor
# LADDER_ONNXRUNTIME_LIB names a library. A second run downloads nothing.
set -euo pipefail

version=1.24.1

fail() {
	echo "install-ort: $*" >&2
	exit 1
}

if [ -n "${LADDER_ONNXRUNTIME_LIB:-}" ]; then
	if [ ! -f "$LADDER_ONNXRUNTIME_LIB" ]; then
		fail "LADDER_ONNXRUNTIME_LIB=$LADDER_ONNXRUNTIME_LIB does not exist; point it at your libonnxruntime.so.$version, or unset it to use the per-user copy this script installs"
	fi
	echo "$LADDER_ONNXRUNTIME_LIB"
	exit 0
fi

# The user cache directory, as Go's os.UserCacheDir finds it on Linux.
if [ -n "${XDG_CACHE_HOME:-}" ]; then
	case "$XDG_CACHE_HOME" in
	/*) base=$XDG_CACHE_HOME ;;
	*) fail "XDG_CACHE_HOME=$XDG_CACHE_HOME is relative; make it an absolute path, or set LADDER_ONNXRUNTIME_LIB to your own libonnxruntime.so.$version" ;;
	esac
elif [ -n "${HOME:-}" ]; then
	base=$HOME/.cache
else
	fail "neither XDG_CACHE_HOME nor HOME is set, so there is no per-user cache to install into; set one, or set LADDER_ONNXRUNTIME_LIB to your own libonnxruntime.so.$version"
fi
cache="$base/ladder/onnxruntime/$version"

if [ "$(uname -s)" != Linux ]; then
	fail "no bundled ONNX Runtime for $(uname -s); set LADDER_ONNXRUNTIME_LIB to your own ONNX Runtime $version library"
fi
case "$(uname -m)" in
x86_64 | amd64)
	arch=x64
	sum=53ef1ac028dd1b05554b8da28d9159eb3876f99868193d2aaa6e67f0243c23d4
	;;
aarch64 | arm64)
	arch=arm64
	sum=7954e8bdedb497f830c6a679e818d98399b7f4d81ade1126c3e0be74d28111ab
	;;
*)
	fail "no bundled ONNX Runtime for $(uname -m); set LADDER_ONNXRUNTIME_LIB to your own libonnxruntime.so.$version"
	;;
esac

lib="$cache/libonnxruntime.so.1"
verify() { echo "$sum  $1" | sha256sum --check --status; }

if [ -f "$lib" ] && verify "$lib"; then
	echo "$lib"
	exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
	fail "npm is needed to fetch onnxruntime-node@$version (apt-get install npm), or set LADDER_ONNXRUNTIME_LIB to your own libonnxruntime.so.$version"
fi

mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "install-ort: fetching onnxruntime-node@$version with npm pack" >&2
(cd "$work" && npm pack --silent "onnxruntime-node@$version" >/dev/null) ||
	fail "npm pack onnxruntime-node@$version failed (see above); or set LADDER_ONNXRUNTIME_LIB to your own libonnxruntime.so.$version"
member="package/bin/napi-v6/linux/$arch/libonnxruntime.so.1"
tar -xzf "$work/onnxruntime-node-$version.tgz" -C "$work" "$member"
if ! verify "$work/$member"; then
	fail "sha256 of $member does not match $sum; refusing to use it"
fi
# Copy next to the target, then rename: another clone installing at the
# same time never sees a half-written library.
mv "$work/$member" "$lib.tmp.$$"
mv "$lib.tmp.$$" "$lib"
echo "install-ort: installed $lib" >&2
echo "$lib"
