package linuxrt

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// overlayOptions builds the overlayfs mount data for lowers given bottom
// first. upper and work may be empty for a read-only mount.
//
// redirect_dir, index and metacopy are turned off so that an upper directory
// holds nothing but plain files, whiteouts and opaque markers, and can later
// serve as a lower layer on its own (see Snapshot).
func overlayOptions(lowers []string, upper, work string) (string, error) {
	if len(lowers) == 0 {
		return "", errors.New("linuxrt: no layers")
	}
	all := append(append([]string{}, lowers...), upper, work)
	for _, p := range all {
		if strings.ContainsAny(p, ":,\\") {
			return "", fmt.Errorf("linuxrt: layer path %q contains ':', ',' or '\\'", p)
		}
	}
	top := make([]string, len(lowers))
	for i, l := range lowers {
		top[len(lowers)-1-i] = l
	}
	opts := "lowerdir=" + strings.Join(top, ":")
	if upper != "" {
		opts += ",upperdir=" + upper + ",workdir=" + work
	}
	opts += ",redirect_dir=off,index=off,metacopy=off"
	if len(opts) >= os.Getpagesize()-1 {
		return "", fmt.Errorf("linuxrt: overlay options too long (%d bytes); use shorter layer paths or fewer layers", len(opts))
	}
	return opts, nil
}

// checkLayers makes sure every layer is an existing directory given by an
// absolute path.
func checkLayers(layers []string) ([]string, error) {
	out := make([]string, len(layers))
	for i, l := range layers {
		if !filepath.IsAbs(l) {
			return nil, fmt.Errorf("linuxrt: layer path %q is not absolute", l)
		}
		l = filepath.Clean(l)
		fi, err := os.Stat(l)
		if err != nil {
			return nil, fmt.Errorf("linuxrt: layer: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("linuxrt: layer %s is not a directory", l)
		}
		out[i] = l
	}
	return out, nil
}

// OpenMerged mounts layers (bottom first, e.g. the base rootfs then image
// layers) read-only on a new temporary directory, so that an image's file
// tree can be inspected. cleanup unmounts and removes that directory.
func OpenMerged(layers []string) (dir string, cleanup func() error, err error) {
	return OpenMergedIn("", layers)
}

// OpenMergedIn is OpenMerged with the mount point made in parent (the
// default temporary directory when empty), e.g. under a runtime's state
// directory so that CleanupStale finds it after a crash.
func OpenMergedIn(parent string, layers []string) (dir string, cleanup func() error, err error) {
	layers, err = checkLayers(layers)
	if err != nil {
		return "", nil, err
	}
	if len(layers) == 0 {
		return "", nil, errors.New("linuxrt: no layers")
	}
	if parent != "" {
		if err := os.MkdirAll(parent, 0o700); err != nil {
			return "", nil, err
		}
	}
	dir, err = os.MkdirTemp(parent, "phoenix-layers-")
	if err != nil {
		return "", nil, err
	}
	if len(layers) == 1 {
		err = unix.Mount(layers[0], dir, "", unix.MS_BIND, "")
		if err == nil {
			err = unix.Mount("", dir, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID, "")
			if err != nil {
				unix.Unmount(dir, unix.MNT_DETACH)
			}
		}
	} else {
		var opts string
		opts, err = overlayOptions(layers, "", "")
		if err == nil {
			err = unix.Mount("overlay", dir, "overlay", unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID, opts)
		}
	}
	if err != nil {
		os.Remove(dir)
		return "", nil, fmt.Errorf("linuxrt: mount layers: %w", err)
	}
	cleanup = func() error {
		if err := unix.Unmount(dir, 0); err != nil {
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("linuxrt: unmount %s: %w", dir, err)
			}
		}
		return os.Remove(dir)
	}
	return dir, cleanup, nil
}

// copyLayer copies the tree src to dst (which must not exist) preserving
// everything overlayfs cares about: file types (including the 0/0 character
// devices that mark deletions), ownership, modes, extended attributes
// (trusted.overlay.opaque, security.capability, ...), times and hard links.
// It returns the number of bytes of file content copied.
func copyLayer(src, dst string) (int64, error) {
	c := &layerCopier{links: map[[2]uint64]string{}}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return 0, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return 0, fmt.Errorf("linuxrt: %s is not a directory", src)
	}
	if err := c.copy(src, dst, &st); err != nil {
		return c.bytes, err
	}
	return c.bytes, nil
}

type layerCopier struct {
	bytes int64
	links map[[2]uint64]string // (dev, inode) of multiply linked files -> first copy
}

func (c *layerCopier) copy(src, dst string, st *unix.Stat_t) error {
	mode := st.Mode & unix.S_IFMT
	perm := st.Mode & 0o7777
	switch mode {
	case unix.S_IFDIR:
		if err := unix.Mkdir(dst, 0o700); err != nil {
			return fmt.Errorf("mkdir %s: %w", dst, err)
		}
		entries, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range entries {
			s := filepath.Join(src, e.Name())
			var cst unix.Stat_t
			if err := unix.Lstat(s, &cst); err != nil {
				if errors.Is(err, unix.ENOENT) { // removed meanwhile (running instance)
					continue
				}
				return err
			}
			if err := c.copy(s, filepath.Join(dst, e.Name()), &cst); err != nil {
				return err
			}
		}
	case unix.S_IFREG:
		if st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := c.links[key]; ok {
				return os.Link(first, dst)
			}
			c.links[key] = dst
		}
		if err := c.copyFile(src, dst); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		if err := unix.Mknod(dst, mode|0o600, int(st.Rdev)); err != nil {
			return fmt.Errorf("mknod %s: %w", dst, err)
		}
	default:
		return fmt.Errorf("linuxrt: %s: unsupported file type %#o", src, mode)
	}
	return c.copyMeta(src, dst, st, perm, mode == unix.S_IFLNK)
}

func (c *layerCopier) copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(out, in)
	c.bytes += n
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

// copyMeta applies ownership, mode, extended attributes and times, in that
// order: chown clears set-id bits and file capabilities.
func (c *layerCopier) copyMeta(src, dst string, st *unix.Stat_t, perm uint32, symlink bool) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown %s: %w", dst, err)
	}
	if !symlink {
		if err := unix.Chmod(dst, perm); err != nil {
			return fmt.Errorf("chmod %s: %w", dst, err)
		}
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("utimes %s: %w", dst, err)
	}
	return nil
}

func copyXattrs(src, dst string) error {
	size, err := unix.Llistxattr(src, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return fmt.Errorf("listxattr %s: %w", src, err)
	}
	if size == 0 {
		return nil
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(src, buf)
	if err != nil {
		return fmt.Errorf("listxattr %s: %w", src, err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		vsize, err := unix.Lgetxattr(src, name, nil)
		if err != nil {
			return fmt.Errorf("getxattr %s %s: %w", src, name, err)
		}
		val := make([]byte, vsize)
		if vsize > 0 {
			vsize, err = unix.Lgetxattr(src, name, val)
			if err != nil {
				return fmt.Errorf("getxattr %s %s: %w", src, name, err)
			}
			val = val[:vsize]
		}
		if err := unix.Lsetxattr(dst, name, val, 0); err != nil {
			return fmt.Errorf("setxattr %s %s: %w", dst, name, err)
		}
	}
	return nil
}
