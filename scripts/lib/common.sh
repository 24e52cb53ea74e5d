# Shared by the scripts in scripts/: installing Debian packages that are missing, and
# checking the Swift toolchain. Source it; do not run it.

# Packages Wharf needs to build and run: OpenSSL (PKCS#12), libcurl (delivery), SQLite (registry).
WHARF_BUILD_PACKAGES=(pkg-config libssl-dev libcurl4-openssl-dev libsqlite3-dev openssl curl ca-certificates)
# What the tests add: Java's keytool to open the keystores Wharf writes, nginx as a partner
# endpoint, systemd-analyze to check the unit file, sqlite3 to tamper with a registry,
# promtool (in prometheus) to check the metrics, PostgreSQL 15 (postgresql) for the shared
# registry of several nodes: each test starts a server of its own.
WHARF_TEST_PACKAGES=(openjdk-17-jre-headless nginx python3 python3-venv systemd sqlite3 prometheus postgresql)
# What scripts/bench adds: the baselines (nginx, ab from apache2-utils, curl) and its driver.
WHARF_BENCH_PACKAGES=(nginx apache2-utils curl python3 postgresql)

# ensure_packages PACKAGE...: installs those of PACKAGE that are not installed yet.
ensure_packages() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    ((${#missing[@]})) || return 0
    local sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    echo "Installing ${missing[*]}" >&2
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_python_tools: a virtual environment in .build/test-tools with the PyPI tools the
# tests run as peers (sslyze, which checks the listener against Mozilla's TLS profiles);
# prints the path of its bin directory. Installed once per build directory.
WHARF_PYPI_TOOLS=(sslyze==6.3.1)
ensure_python_tools() {
    local venv=.build/test-tools
    if [ ! -x "$venv/bin/sslyze" ]; then
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install --quiet --disable-pip-version-check "${WHARF_PYPI_TOOLS[@]}" >&2
    fi
    echo "$PWD/$venv/bin"
}

# ensure_swift: stops with a clear message when no Swift 6 toolchain is on PATH.
ensure_swift() {
    if ! command -v swift >/dev/null 2>&1; then
        echo "Wharf needs a Swift 6 toolchain on PATH (swift.org/install); none was found." >&2
        exit 1
    fi
}

# build_release: the release binary that scripts/start runs and scripts/bench measures, one
# self-contained file (the Swift runtime and Foundation linked in). Every function gets a
# section of its own, in Wharf and in what it links, so that the linker can place the
# functions listed in Sources/wharf/hot-functions.order together (see Package.swift and
# docs/performance.md, B6).
build_release() {
    swift build -c release --static-swift-stdlib \
        -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections \
        --product wharf
}
