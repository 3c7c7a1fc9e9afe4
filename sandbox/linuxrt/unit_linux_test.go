package linuxrt

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseAptSources(t *testing.T) {
	dir := t.TempDir()
	deb822 := filepath.Join(dir, "debian.sources")
	os.WriteFile(deb822, []byte(`Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
 continued

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
`), 0o644)
	list := filepath.Join(dir, "x.list")
	os.WriteFile(list, []byte("# c\ndeb [arch=amd64 signed-by=/k.gpg] http://a.example/debian bookworm main\ndeb-src http://b.example bookworm main\ndeb http://c.example/debian bookworm-security main\n"), 0o644)

	got := parseAptSources(deb822)
	want := []aptSource{
		{"http://mirror.example/debian", []string{"bookworm", "bookworm-updates"}},
		{"http://mirror.example/debian-security", []string{"bookworm-security"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("deb822: got %+v", got)
	}
	got = parseAptSources(list)
	want = []aptSource{
		{"http://a.example/debian", []string{"bookworm"}},
		{"http://c.example/debian", []string{"bookworm-security"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("list: got %+v", got)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/a/b`:          "/a/b",
		`/a\040b`:       "/a b",
		`/x\011y\134z`:  "/x\ty\\z",
		`/trailing\04`:  `/trailing\04`,
		`/not\999octal`: `/not\999octal`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOverlayOptions(t *testing.T) {
	got, err := overlayOptions([]string{"/base", "/l1", "/l2"}, "/u", "/w")
	if err != nil {
		t.Fatal(err)
	}
	if want := "lowerdir=/l2:/l1:/base,upperdir=/u,workdir=/w,redirect_dir=off,index=off,metacopy=off"; got != want {
		t.Errorf("got %q", got)
	}
	if _, err := overlayOptions([]string{"/a:b"}, "", ""); err == nil {
		t.Error("accepted ':' in a layer path")
	}
	if _, err := overlayOptions(nil, "", ""); err == nil {
		t.Error("accepted no layers")
	}
	if _, err := overlayOptions([]string{"/" + strings.Repeat("x", 5000)}, "", ""); err == nil {
		t.Error("accepted overlong options")
	}
}

// copyLayer must keep what overlayfs needs from an upper directory. Needs
// root (ownership, device nodes, trusted.* attributes) but no network.
func TestCopyLayer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	src := filepath.Join(t.TempDir(), "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "etc/opaque"), 0o755))
	must(unix.Setxattr(filepath.Join(src, "etc/opaque"), "trusted.overlay.opaque", []byte("y"), 0))
	must(os.WriteFile(filepath.Join(src, "etc/file"), []byte("hello"), 0o640))
	must(os.Chown(filepath.Join(src, "etc/file"), 1000, 1001))
	must(unix.Setxattr(filepath.Join(src, "etc/file"), "user.note", []byte("kept"), 0))
	must(os.Link(filepath.Join(src, "etc/file"), filepath.Join(src, "etc/hardlink")))
	must(os.WriteFile(filepath.Join(src, "suid"), []byte("#!/bin/sh\n"), 0o755))
	must(unix.Chmod(filepath.Join(src, "suid"), 0o4755))
	must(os.Symlink("etc/file", filepath.Join(src, "link")))
	must(unix.Mknod(filepath.Join(src, "etc/deleted"), unix.S_IFCHR, 0)) // whiteout
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	must(os.Chtimes(filepath.Join(src, "etc/file"), old, old))

	dst := filepath.Join(t.TempDir(), "dst")
	n, err := copyLayer(src, dst)
	must(err)
	if n != int64(len("hello")+len("#!/bin/sh\n")) {
		t.Errorf("copied %d bytes", n)
	}
	var st, st2 unix.Stat_t
	must(unix.Lstat(filepath.Join(dst, "etc/file"), &st))
	if st.Uid != 1000 || st.Gid != 1001 || st.Mode&0o7777 != 0o640 || st.Mtim.Sec != old.Unix() {
		t.Errorf("file metadata: %+v", st)
	}
	must(unix.Lstat(filepath.Join(dst, "etc/hardlink"), &st2))
	if st.Ino != st2.Ino {
		t.Error("hard link not kept")
	}
	buf := make([]byte, 16)
	if n, err := unix.Getxattr(filepath.Join(dst, "etc/opaque"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr: %q %v", buf[:max(n, 0)], err)
	}
	if n, err := unix.Getxattr(filepath.Join(dst, "etc/file"), "user.note", buf); err != nil || string(buf[:n]) != "kept" {
		t.Errorf("user xattr: %q %v", buf[:max(n, 0)], err)
	}
	must(unix.Lstat(filepath.Join(dst, "etc/deleted"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout: mode %o rdev %d", st.Mode, st.Rdev)
	}
	must(unix.Lstat(filepath.Join(dst, "suid"), &st))
	if st.Mode&0o7777 != 0o4755 {
		t.Errorf("setuid mode: %o", st.Mode&0o7777)
	}
	if target, err := os.Readlink(filepath.Join(dst, "link")); err != nil || target != "etc/file" {
		t.Errorf("symlink: %q %v", target, err)
	}
	must(unix.Lstat(filepath.Join(dst, "fifo"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo: mode %o", st.Mode)
	}
	if _, err := snapshotDir(src, dst); err == nil {
		t.Error("snapshot onto an existing directory succeeded")
	}
}
