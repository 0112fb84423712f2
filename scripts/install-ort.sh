#!/usr/bin/env bash
# install-ort.sh prints the path of an ONNX Runtime 1.24.1 shared library,
# installing it first when needed.
#
# A user's own copy, named by LADDER_ONNXRUNTIME_LIB, takes precedence and is
# used as it is. Otherwise the library is taken from the npm registry package
# onnxruntime-node@1.24.1 (fetched with `npm pack`, never `npm install`, whose
# postinstall script downloads from elsewhere), checked against a pinned
# sha256 and cached in .cache/onnxruntime/ (git-ignored). A second run
# downloads nothing.
set -euo pipefail

version=1.24.1
root=$(cd "$(dirname "$0")/.." && pwd)
cache="${LADDER_CACHE_DIR:-$root/.cache}/onnxruntime/$version"

if [ -n "${LADDER_ONNXRUNTIME_LIB:-}" ]; then
	if [ ! -f "$LADDER_ONNXRUNTIME_LIB" ]; then
		echo "install-ort: LADDER_ONNXRUNTIME_LIB=$LADDER_ONNXRUNTIME_LIB does not exist; point it at libonnxruntime.so.$version or unset it to use the bundled copy" >&2
		exit 1
	fi
	echo "$LADDER_ONNXRUNTIME_LIB"
	exit 0
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
	echo "install-ort: no bundled ONNX Runtime for $(uname -m); set LADDER_ONNXRUNTIME_LIB to your own libonnxruntime.so.$version" >&2
	exit 1
	;;
esac

lib="$cache/libonnxruntime.so.1"
verify() { echo "$sum  $1" | sha256sum --check --status; }

if [ -f "$lib" ] && verify "$lib"; then
	echo "$lib"
	exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
	echo "install-ort: npm is needed to fetch onnxruntime-node@$version (apt-get install npm), or set LADDER_ONNXRUNTIME_LIB to your own libonnxruntime.so.$version" >&2
	exit 1
fi

mkdir -p "$cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "install-ort: fetching onnxruntime-node@$version with npm pack" >&2
(cd "$work" && npm pack --silent "onnxruntime-node@$version" >/dev/null)
member="package/bin/napi-v6/linux/$arch/libonnxruntime.so.1"
tar -xzf "$work/onnxruntime-node-$version.tgz" -C "$work" "$member"
if ! verify "$work/$member"; then
	echo "install-ort: sha256 of $member does not match $sum; refusing to use it" >&2
	exit 1
fi
mv "$work/$member" "$lib.tmp"
mv "$lib.tmp" "$lib"
echo "install-ort: installed $lib" >&2
echo "$lib"
