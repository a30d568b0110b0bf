# Shared by the scripts that run a server from Maven Central artifacts, which a small Maven
# project in tools/<name>/ packages and copies into its target/lib (scripts/kafka.sh,
# scripts/opensearch.sh), as scripts/lib/go_tool.sh is for the Go servers. Sourced, not run.
#
# The caller sets, before calling these:
#   TOOL_DIR   the Maven project (pom.xml, src/)
#   TARGET     its target/ folder; JAR the jar it packages; STAMP the file a good build touches
#   JAVA MVN   the binaries to use
# and defines log and die.

# Installs a JDK with apt-get when java (or javac, which the build needs) is missing and this
# is root on Debian; else dies.
ensure_jdk() {
    if ! command -v "$JAVA" >/dev/null 2>&1 || ! command -v javac >/dev/null 2>&1; then
        if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
            log "a JDK was not found; installing default-jdk-headless with apt-get"
            apt-get update -qq >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jdk-headless >&2
        fi
    fi
    command -v "$JAVA" >/dev/null 2>&1 || die "java not found (need a JDK 17)"
}

# Installs Maven with apt-get when it is missing and this is root on Debian; else dies.
ensure_mvn() {
    if ! command -v "$MVN" >/dev/null 2>&1; then
        if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
            log "mvn not found; installing maven with apt-get"
            apt-get update -qq >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >&2
        else
            die "mvn not found (install Maven 3.8+)"
        fi
    fi
}

do_build() {
    ensure_jdk
    ensure_mvn
    log "building $TOOL_DIR"
    rm -f "$STAMP"
    rm -rf "${TARGET:?}/lib"
    # (Debian's Maven 3.8 prints stray colour resets even in batch mode: strip them.)
    (cd "$TOOL_DIR" && "$MVN" -B -q -Dstyle.color=never package dependency:copy-dependencies) 2>&1 \
        | sed $'s/\x1b\\[[0-9;]*m//g' >&2 \
        || die "maven build failed"
    [[ -f "$JAR" && -d "$TARGET/lib" ]] || die "build did not produce $JAR and $TARGET/lib"
    touch "$STAMP"
}

# Exit 0 when there is no good build, or the pom or a source file changed since the last one.
needs_build() {
    [[ -f "$STAMP" && -f "$JAR" && -d "$TARGET/lib" ]] || return 0
    [[ -n "$(find "$TOOL_DIR/pom.xml" "$TOOL_DIR/src" -newer "$STAMP" -print -quit 2>/dev/null)" ]]
}
