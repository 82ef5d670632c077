# shellcheck shell=bash
#
# What the console's browser tests (admin/tests/browser.rs) need besides the
# servers: headless Chromium with its WebDriver, Java, and two npm packages
# (the Nu Html Checker `vnu-jar` and `axe-core`).  Sourced by deploy/dev after
# deploy/lib/services.sh (uses say/die/have/install_packages).
#
# The npm packages go into a cache dir outside the work tree so fresh clones on
# the same machine reuse them:
#   AUTOSOCIAL_BROWSER_TOOLS_DIR   (default ${XDG_CACHE_HOME:-$HOME/.cache}/autosocial/browser-tools)
#
# Exports what the tests read:
#   AUTOSOCIAL_TEST_CHROMIUM      the chromium binary
#   AUTOSOCIAL_TEST_CHROMEDRIVER  the chromedriver binary
#   AUTOSOCIAL_TEST_VNU_JAR       vnu.jar
#   AUTOSOCIAL_TEST_AXE_JS        axe.min.js
#   AUTOSOCIAL_TEST_JAVA          the java binary

# Pinned so a release of either cannot change what passes.
BROWSER_NPM_PACKAGES=(vnu-jar@26.9.27 axe-core@4.14.1)

browser_tools_dir() {
    echo "${AUTOSOCIAL_BROWSER_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/autosocial/browser-tools}"
}

# Debian names the binary `chromium`; other systems `chromium-browser`.
find_chromium() {
    local c
    for c in "${AUTOSOCIAL_TEST_CHROMIUM:-}" chromium chromium-browser; do
        [[ -n $c ]] || continue
        c=$(command -v "$c" 2>/dev/null) || continue
        echo "$c"
        return 0
    done
    return 1
}

find_chromedriver() {
    local c
    for c in "${AUTOSOCIAL_TEST_CHROMEDRIVER:-}" chromedriver /usr/lib/chromium/chromedriver; do
        [[ -n $c ]] || continue
        c=$(command -v "$c" 2>/dev/null) || continue
        echo "$c"
        return 0
    done
    return 1
}

ensure_browser_tools() {
    local chromium driver
    if ! chromium=$(find_chromium) || ! driver=$(find_chromedriver); then
        say "chromium or chromedriver not found (the console's browser tests need both)"
        install_packages chromium chromium-driver ||
            die "the browser tests need Chromium and its WebDriver: apt-get install chromium chromium-driver"
        chromium=$(find_chromium) || die "chromium was installed but is not on PATH"
        driver=$(find_chromedriver) || die "chromium-driver was installed but chromedriver is not on PATH"
    fi
    if ! have java; then
        say "java not found (the Nu Html Checker runs on it)"
        install_packages default-jre-headless && have java ||
            die "the HTML validation needs Java: apt-get install default-jre-headless"
    fi
    if ! have npm; then
        say "npm not found (the HTML checker and axe-core come from npm)"
        install_packages npm && have npm || die "the browser tests need npm: apt-get install npm"
    fi

    local dir vnu axe
    dir=$(browser_tools_dir)
    vnu=$dir/node_modules/vnu-jar/build/dist/vnu.jar
    axe=$dir/node_modules/axe-core/axe.min.js
    local stamp=$dir/.installed want
    want=$(printf '%s\n' "${BROWSER_NPM_PACKAGES[@]}")
    if [[ ! -f $vnu || ! -f $axe || $(cat "$stamp" 2>/dev/null) != "$want" ]]; then
        say "installing ${BROWSER_NPM_PACKAGES[*]} with npm into $dir"
        mkdir -p "$dir"
        [[ -f $dir/package.json ]] || printf '{"name":"autosocial-browser-tools","private":true}\n' >"$dir/package.json"
        npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
            --save-exact "${BROWSER_NPM_PACKAGES[@]}" >&2 ||
            die "npm install ${BROWSER_NPM_PACKAGES[*]} failed"
        [[ -f $vnu ]] || die "$vnu missing after npm install"
        [[ -f $axe ]] || die "$axe missing after npm install"
        printf '%s\n' "$want" >"$stamp"
    fi

    AUTOSOCIAL_TEST_CHROMIUM=$chromium
    AUTOSOCIAL_TEST_CHROMEDRIVER=$driver
    AUTOSOCIAL_TEST_VNU_JAR=$vnu
    AUTOSOCIAL_TEST_AXE_JS=$axe
    AUTOSOCIAL_TEST_JAVA=$(command -v java)
    export AUTOSOCIAL_TEST_CHROMIUM AUTOSOCIAL_TEST_CHROMEDRIVER AUTOSOCIAL_TEST_VNU_JAR \
        AUTOSOCIAL_TEST_AXE_JS AUTOSOCIAL_TEST_JAVA
    say "browser tests: $("$chromium" --version 2>/dev/null | head -n 1), $("$driver" --version 2>/dev/null | cut -d' ' -f1-2)"
}
