#!/usr/bin/env bash
# `edgemnist verify` on ARM64, on this x86_64 machine, under qemu-user emulation. Run as root:
#
#     bash benchmarks/arm64_verify.sh [--setup-only] [MODEL ...]      (default: exported/mlp.int8.onnx exported/mlp.onnx)
#
# Setup, from nothing, once (kept in $EDGEMNIST_ARM64_HOME, default ~/.cache/edgemnist/arm64):
#   - Debian's qemu-user-static (apt-get);
#   - a sysroot of Debian's arm64 python3.11 and its libraries, fetched by apt with a private
#     configuration whose architecture is arm64 (the host's dpkg is never touched) and unpacked
#     with dpkg-deb -x;
#   - onnxruntime's manylinux aarch64 wheel and the rest of the runtime side (numpy, pillow, typer,
#     rich), fetched by the host's pip for the aarch64 platform into a --target directory. No torch:
#     verify is torch-free.
#   - qemu-user 7.2 shows the guest the host's x86 /proc/cpuinfo, on which onnxruntime's CPU
#     detection crashes; with -L SYSROOT the guest reads SYSROOT/proc/cpuinfo instead, so an arm64
#     one is written there. The features edgemnist reports come from the auxiliary vector, which
#     qemu emulates for each CPU model.
# Then MODEL is verified under each emulated CPU of $ARM64_CPUS (default: max = dot product + i8mm +
# SVE + SME; neoverse-n1 = dot product, no i8mm; cortex-a72 = neither), one JSON line per run on
# stdout, the human verdicts on stderr. Exit 0 when every run passed, 1 when one drifted, 2 on setup errors.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
ARM=${EDGEMNIST_ARM64_HOME:-${EDGEMNIST_HOME:-$HOME/.cache/edgemnist}/arm64}
SYSROOT=$ARM/sysroot
SITE=$ARM/site
APTDIR=$ARM/apt
CPUS=${ARM64_CPUS:-max neoverse-n1 cortex-a72}
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python

say() { echo "arm64_verify: $*" >&2; }
fail() { say "$*"; exit 2; }

setup_qemu() {
  command -v qemu-aarch64-static >/dev/null && return
  [ "$(id -u)" = 0 ] || fail "qemu-user-static is missing and installing it needs root"
  say "installing qemu-user-static"
  (apt-get install -y -qq qemu-user-static >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq qemu-user-static >/dev/null; }) \
    || fail "apt-get install qemu-user-static failed"
}

setup_sysroot() {
  [ -x "$SYSROOT/usr/bin/python3.11" ] && grep -q 0xd08 "$SYSROOT/proc/cpuinfo" 2>/dev/null && return
  say "fetching Debian arm64 python3.11 into $SYSROOT"
  mkdir -p "$APTDIR"/{lists/partial,archives/partial,sources.list.d,apt.conf.d,preferences.d} "$SYSROOT"
  : > "$APTDIR/status"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  cat > "$APTDIR/sources.list" <<EOF
deb [arch=arm64 signed-by=$keyring] http://deb.debian.org/debian bookworm main
deb [arch=arm64 signed-by=$keyring] http://deb.debian.org/debian bookworm-updates main
deb [arch=arm64 signed-by=$keyring] http://deb.debian.org/debian-security bookworm-security main
EOF
  cat > "$APTDIR/apt.conf" <<EOF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
APT::Install-Recommends "false";
APT::Sandbox::User "root";
Dir::State "$APTDIR";
Dir::State::status "$APTDIR/status";
Dir::State::Lists "$APTDIR/lists";
Dir::Cache "$APTDIR";
Dir::Cache::archives "$APTDIR/archives";
Dir::Etc::SourceList "$APTDIR/sources.list";
Dir::Etc::SourceParts "$APTDIR/sources.list.d";
Dir::Etc::Parts "$APTDIR/apt.conf.d";
Dir::Etc::PreferencesParts "$APTDIR/preferences.d";
EOF
  export APT_CONFIG=$APTDIR/apt.conf
  apt-get update -qq >/dev/null || fail "apt-get update (arm64 lists) failed"
  apt-get install -y -qq --download-only python3.11-minimal libpython3.11-stdlib libstdc++6 >/dev/null \
    || fail "apt-get could not fetch the arm64 packages"
  unset APT_CONFIG
  for deb in "$APTDIR"/archives/*.deb; do dpkg-deb -x "$deb" "$SYSROOT"; done
  mkdir -p "$SYSROOT/proc"
  # An ARMv8.0 core (Cortex-A72 MIDR) with base features only: onnxruntime's cpuinfo turns the
  # dot-product kernels on for some newer cores' MIDRs whatever the CPU has (SIGILL under a QEMU_CPU
  # without them), so the optional features must come from the auxiliary vector, which qemu emulates.
  local core='BogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n'
  printf "processor\t: 0\n${core}\nprocessor\t: 1\n${core}" > "$SYSROOT/proc/cpuinfo"
}

setup_wheels() {
  [ -f "$SITE/.complete" ] && return
  say "fetching the aarch64 wheels of the runtime side into $SITE"
  rm -rf "$SITE" && mkdir -p "$SITE"
  # the same runtime dependencies as pyproject.toml's core install
  local deps
  deps=$("$PY" - <<'EOF'
import tomllib
print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))
EOF
)
  # shellcheck disable=SC2086
  "$PY" -m pip install --quiet --target "$SITE" --platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64 \
    --only-binary=:all: --python-version 3.11 --implementation cp $deps || fail "pip could not fetch the aarch64 wheels"
  touch "$SITE/.complete"
}

guest() {  # QEMU_CPU=... guest ARGS: run the arm64 python with the runtime side and this checkout
  PYTHONPATH="$SITE:$REPO" PYTHONNOUSERSITE=1 qemu-aarch64-static -L "$SYSROOT" "$SYSROOT/usr/bin/python3.11" "$@"
}

setup_only=0
models=()
for arg in "$@"; do
  case "$arg" in
    --setup-only) setup_only=1 ;;
    *) models+=("$arg") ;;
  esac
done
[ ${#models[@]} -gt 0 ] || models=(exported/mlp.int8.onnx exported/mlp.onnx)

setup_qemu
setup_sysroot
setup_wheels
QEMU_CPU=max guest -c "import onnxruntime, platform; assert platform.machine() == 'aarch64'" \
  || fail "the arm64 python cannot import onnxruntime under qemu"
[ $setup_only = 1 ] && { say "ready: $ARM"; exit 0; }

status=0
for cpu in $CPUS; do
  for model in "${models[@]}"; do
    say "QEMU_CPU=$cpu: edgemnist verify $model"
    set +e
    out=$(QEMU_CPU=$cpu guest -m edgemnist verify "$model" --provider cpu --json)
    rc=$?
    set -e
    [ -n "$out" ] && echo "$out" | "$PY" -c "import json, sys; r = json.load(sys.stdin); r['qemu_cpu'] = '$cpu'; print(json.dumps(r))"
    [ $rc = 0 ] || { say "QEMU_CPU=$cpu $model: exit $rc"; status=1; }
  done
done
exit $status
