# Shared by bin/rdzv, bin/test and .ci/run: find a JDK 21 or newer.

# The feature version of a java binary (17, 21, 25...), or 0.
rdzv_java_version() {
  local v="" home release line
  # Fast path: the JDK's release file (JAVA_VERSION="25.0.3"), read without starting a JVM.
  home="$(dirname "$(dirname "$(readlink -f "$1")")")"
  release="$home/release"
  [[ -f "$release" ]] || release="$(dirname "$home")/release"   # a JRE inside an old JDK
  if [[ -f "$release" ]]; then
    while IFS= read -r line; do
      if [[ "$line" =~ ^JAVA_VERSION=\"(1\.)?([0-9]+) ]]; then v="${BASH_REMATCH[2]}"; break; fi
    done <"$release"
  fi
  if [[ -z "$v" ]]; then
    v="$("$1" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2; exit}')" || true
  fi
  [[ "$v" =~ ^[0-9]+$ ]] && echo "$v" || echo 0
}

# Prints a java binary of version >= 21: $JAVA_HOME, then PATH, then /usr/lib/jvm (newest first).
rdzv_find_java() {
  local candidates=() c
  [[ -n "${JAVA_HOME:-}" ]] && candidates+=("$JAVA_HOME/bin/java")
  command -v java >/dev/null 2>&1 && candidates+=("$(command -v java)")
  for c in $(ls -d /usr/lib/jvm/*/ 2>/dev/null | sort -t- -k2 -V -r); do candidates+=("${c%/}/bin/java"); done
  for c in "${candidates[@]}"; do
    if [[ -x "$c" ]] && (( $(rdzv_java_version "$c") >= 21 )); then
      echo "$c"
      return 0
    fi
  done
  echo "rdzv: no JDK 21 or newer found (looked at JAVA_HOME, PATH and /usr/lib/jvm); install one, e.g. apt-get install openjdk-21-jdk-headless or temurin-21-jdk, or set JAVA_HOME" >&2
  return 1
}

# JAVA_HOME of a java binary.
rdzv_java_home() {
  dirname "$(dirname "$(readlink -f "$1")")"
}

# Extra MAVEN_OPTS for running Maven on this JDK (quiets JDK 24+ warnings about Maven's Guava).
rdzv_maven_opts() {
  (( $(rdzv_java_version "$1") >= 24 )) && echo "--sun-misc-unsafe-memory-access=allow" || true
}
