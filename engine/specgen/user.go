package specgen

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/hako-project/hako/errdefs"
	"golang.org/x/sys/unix"
)

// ExecUser is a resolved container user.
type ExecUser struct {
	UID, GID       uint32
	AdditionalGids []uint32
	Home           string
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// maxID is the largest uid/gid the kernel accepts (2^31-1; 2^32-1 means -1).
const maxID = 1<<31 - 1

// ResolveUser resolves docker's user forms ("", "name", "uid", "name:group",
// "uid:gid", "name:gid", "uid:group") against rootfs/etc/passwd and
// rootfs/etc/group, as runc does: a numeric uid need not exist in passwd
// (gid 0, home "/"), a name must; supplementary groups are the groups that
// list the user, unless a group was given.
func ResolveUser(rootfs, user string) (ExecUser, error) {
	users, uerr := readPasswd(rootfs)
	groups, gerr := readGroup(rootfs)
	return resolveUser(user, users, uerr, groups, gerr)
}

func resolveUser(spec string, users []passwdEntry, uerr error, groups []groupEntry, gerr error) (ExecUser, error) {
	u := ExecUser{Home: "/"}
	userArg, groupArg, hasGroup := strings.Cut(spec, ":")
	if userArg == "" {
		userArg = "0"
	}
	var name string
	if n, err := strconv.ParseUint(userArg, 10, 64); err == nil {
		if n > maxID {
			return ExecUser{}, fmt.Errorf("%w: uid %d is out of range", errdefs.ErrInvalid, n)
		}
		u.UID = uint32(n)
		for _, p := range users {
			if p.uid == u.UID {
				u.GID, u.Home, name = p.gid, p.home, p.name
				break
			}
		}
	} else {
		if uerr != nil {
			return ExecUser{}, fmt.Errorf("%w: unable to find user %s: %v", errdefs.ErrInvalid, userArg, uerr)
		}
		found := false
		for _, p := range users {
			if p.name == userArg {
				u.UID, u.GID, u.Home, name, found = p.uid, p.gid, p.home, p.name, true
				break
			}
		}
		if !found {
			return ExecUser{}, fmt.Errorf("%w: unable to find user %s: no matching entries in passwd file", errdefs.ErrInvalid, userArg)
		}
	}
	if hasGroup {
		if groupArg == "" {
			return ExecUser{}, fmt.Errorf("%w: user %q: empty group", errdefs.ErrInvalid, spec)
		}
		if n, err := strconv.ParseUint(groupArg, 10, 64); err == nil {
			if n > maxID {
				return ExecUser{}, fmt.Errorf("%w: gid %d is out of range", errdefs.ErrInvalid, n)
			}
			u.GID = uint32(n)
		} else {
			if gerr != nil {
				return ExecUser{}, fmt.Errorf("%w: unable to find group %s: %v", errdefs.ErrInvalid, groupArg, gerr)
			}
			found := false
			for _, g := range groups {
				if g.name == groupArg {
					u.GID, found = g.gid, true
					break
				}
			}
			if !found {
				return ExecUser{}, fmt.Errorf("%w: unable to find group %s: no matching entries in group file", errdefs.ErrInvalid, groupArg)
			}
		}
		return u, nil
	}
	if name != "" {
		for _, g := range groups {
			for _, m := range g.members {
				if m == name && g.gid != u.GID {
					u.AdditionalGids = append(u.AdditionalGids, g.gid)
					break
				}
			}
		}
	}
	return u, nil
}

// openInRoot opens rootfs/rel resolving every symlink inside rootfs, so an
// image whose /etc/passwd links to /etc/shadow of the host reads its own.
func openInRoot(rootfs, rel string) (*os.File, error) {
	dirfd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs %s: %w", rootfs, err)
	}
	defer unix.Close(dirfd)
	fd, err := unix.Openat2(dirfd, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: rootfs + "/" + rel, Err: err}
	}
	return os.NewFile(uintptr(fd), rootfs+"/"+rel), nil
}

// maxIDFile bounds how much of passwd/group we read.
const maxIDFile = 16 << 20

func readLines(rootfs, rel string, fn func(fields []string)) error {
	if rootfs == "" {
		return fmt.Errorf("no rootfs to read %s from", rel)
	}
	f, err := openInRoot(rootfs, rel)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, maxIDFile))
	// A small buffer to start with, grown for long lines: every start
	// reads passwd and group, and 64 KiB each was a third of what a
	// `run --rm` allocated in hakod (and so of its garbage collections).
	sc.Buffer(make([]byte, 0, 4<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fn(strings.Split(line, ":"))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", rel, err)
	}
	return nil
}

func readPasswd(rootfs string) ([]passwdEntry, error) {
	var out []passwdEntry
	err := readLines(rootfs, "etc/passwd", func(f []string) {
		if len(f) < 4 {
			return
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			return
		}
		home := "/"
		if len(f) >= 6 && f[5] != "" {
			home = f[5]
		}
		out = append(out, passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid), home: home})
	})
	return out, err
}

func readGroup(rootfs string) ([]groupEntry, error) {
	var out []groupEntry
	err := readLines(rootfs, "etc/group", func(f []string) {
		if len(f) < 3 {
			return
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			return
		}
		g := groupEntry{name: f[0], gid: uint32(gid)}
		if len(f) >= 4 && f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		out = append(out, g)
	})
	return out, err
}

// ResolveGroup resolves a --group-add value: a number as is, a name
// against rootfs/etc/group (opened inside the rootfs), with runc's message
// when it is not there.
func ResolveGroup(rootfs, group string) (uint32, error) {
	if n, err := strconv.ParseUint(group, 10, 32); err == nil {
		if n > maxID {
			return 0, fmt.Errorf("%w: gid %d is out of range", errdefs.ErrInvalid, n)
		}
		return uint32(n), nil
	}
	groups, err := readGroup(rootfs)
	if err != nil && !os.IsNotExist(err) {
		return 0, fmt.Errorf("read the container's /etc/group: %w", err)
	}
	for _, g := range groups {
		if g.name == group {
			return g.gid, nil
		}
	}
	return 0, errdefs.Invalidf("Unable to find group %s: no matching entries in group file", group)
}
