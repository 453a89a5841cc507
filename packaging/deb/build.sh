#!/bin/sh
# Builds a Debian package of minder with plain dpkg-deb (no debhelper, no cargo-deb):
#
#   packaging/deb/build.sh            # cargo build --release, then the .deb
#   MINDER_SKIP_BUILD=1 packaging/deb/build.sh   # package the existing binary
#
# Output: target/deb/minder_VERSION_ARCH.deb (target/ is ignored by git). Inspect it
# with `dpkg-deb -I` and `dpkg-deb -c`. Needs dpkg-deb and gzip; dpkg-shlibdeps
# (dpkg-dev) computes the dependencies when present, objdump is the fallback.
#
# Contents: /usr/bin/minder and /usr/bin/minderctl, the man pages minder(8),
# minder.toml(5) and minderctl(1), minderctl's completions for bash, zsh and fish, the
# systemd unit (installed, not enabled: the shipped tree is empty), and
# /etc/minder/minder.toml as a conffile, so dpkg keeps local edits across upgrades.
#
# Maintainer field: "$DEBFULLNAME <$DEBEMAIL>" when both are set (Debian's usual
# variables), else a placeholder.
set -eu

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
umask 022

if [ "${MINDER_SKIP_BUILD:-}" != 1 ]; then
    cargo build --release --locked
fi
binary=target/release/minder
ctl=target/release/minderctl
for built in "$binary" "$ctl"; do
    [ -x "$built" ] || { echo "build.sh: $built is missing; run cargo build --release" >&2; exit 1; }
done

# "path+file:///src#minder@0.1.0" or "path+file:///src/minder#0.1.0" -> "0.1.0"
pkgid=$(cargo pkgid --quiet)
version=${pkgid##*[#@]}
arch=$(dpkg --print-architecture)
package=minder
maintainer="minder maintainers <maintainers@minder.invalid>"
if [ -n "${DEBFULLNAME:-}" ] && [ -n "${DEBEMAIL:-}" ]; then
    maintainer="$DEBFULLNAME <$DEBEMAIL>"
fi
# Reproducible timestamps (dpkg-deb clamps file times to it): the last commit's time.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
    export SOURCE_DATE_EPOCH
fi

out=target/deb
root=$out/${package}_${version}_${arch}
rm -rf "$root"
mkdir -p "$root/DEBIAN"

# The shipped config must be valid: check it with the binary being packaged.
"$binary" check packaging/deb/minder.toml >/dev/null

install -D -m 0755 "$binary" "$root/usr/bin/minder"
install -D -m 0755 "$ctl" "$root/usr/bin/minderctl"
if command -v strip >/dev/null 2>&1; then
    strip --strip-unneeded "$root/usr/bin/minder" "$root/usr/bin/minderctl"
fi
install -D -m 0644 packaging/deb/minder.toml "$root/etc/minder/minder.toml"
install -D -m 0644 packaging/systemd/minder.service "$root/usr/lib/systemd/system/minder.service"
install -d -m 0755 "$root/usr/share/man/man8" "$root/usr/share/man/man5" "$root/usr/share/man/man1"
gzip -9n <man/minder.8 >"$root/usr/share/man/man8/minder.8.gz"
gzip -9n <man/minder.toml.5 >"$root/usr/share/man/man5/minder.toml.5.gz"
gzip -9n <man/minderctl.1 >"$root/usr/share/man/man1/minderctl.1.gz"
chmod 0644 "$root/usr/share/man/man8/minder.8.gz" "$root/usr/share/man/man5/minder.toml.5.gz" \
    "$root/usr/share/man/man1/minderctl.1.gz"
# minderctl's completions (generated from its command line, see completions/), where
# bash-completion, zsh and fish look for packaged ones.
install -D -m 0644 completions/minderctl.bash "$root/usr/share/bash-completion/completions/minderctl"
install -D -m 0644 completions/_minderctl "$root/usr/share/zsh/vendor-completions/_minderctl"
install -D -m 0644 completions/minderctl.fish "$root/usr/share/fish/vendor_completions.d/minderctl.fish"
install -d -m 0755 "$root/usr/share/doc/minder/examples"
install -m 0644 README.md "$root/usr/share/doc/minder/README.md"
install -d -m 0755 "$root/usr/share/doc/minder/docs"
for doc in docs/*.md; do
    install -m 0644 "$doc" "$root/usr/share/doc/minder/docs/"
done
for example in config/example.toml config/sidecars.toml config/reference.toml; do
    install -m 0644 "$example" "$root/usr/share/doc/minder/examples/"
done

# Shared-library dependencies of the binary.
depends=
if command -v dpkg-shlibdeps >/dev/null 2>&1; then
    # dpkg-shlibdeps wants a debian/control; give it a throwaway one.
    scratch=$(mktemp -d)
    mkdir "$scratch/debian"
    printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$package" "$package" \
        >"$scratch/debian/control"
    depends=$(cd "$scratch" && dpkg-shlibdeps -O "$repo/$root/usr/bin/minder" \
        "$repo/$root/usr/bin/minderctl" 2>/dev/null \
        | sed -n 's/^shlibs:Depends=//p')
    rm -rf "$scratch"
fi
if [ -z "$depends" ]; then
    glibc=$(objdump -T "$root/usr/bin/minder" "$root/usr/bin/minderctl" | grep -o 'GLIBC_[0-9][0-9.]*' \
        | sed 's/GLIBC_//' | sort -uV | tail -n 1)
    depends="libc6 (>= $glibc), libgcc-s1"
fi

installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: $package
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $depends
Section: admin
Priority: optional
Description: self-healing process supervisor with OTP restart strategies
 minder starts a tree of services in order, restarts them under Erlang/OTP
 strategies (one_for_one, one_for_all, rest_for_one) with backoff and restart
 budgets, escalates up the tree when restarts do not help, reaps every zombie
 and exits with a meaningful code. It runs as PID 1 of a container (like
 tini), as a systemd service, or in a terminal.
 .
 minderctl shows the state of a running minder and starts, stops, restarts,
 signals and reloads its services over a unix control socket.
 .
 The systemd unit is installed but not enabled; edit /etc/minder/minder.toml,
 then run: systemctl enable --now minder
EOF
echo /etc/minder/minder.toml >"$root/DEBIAN/conffiles"

# Make systemd see the new or removed unit file; nothing is enabled or started.
cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
EOF
cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"

deb=$out/${package}_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
