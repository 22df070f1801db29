package fusefs

import (
	"errors"
	"fmt"
	"os/exec"

	"golang.org/x/sys/unix"
)

// CleanStale detaches a dead FUSE mount at dir: one whose server died (a
// killed daemon) without unmounting, where every access fails with
// "transport endpoint is not connected" and a new mount cannot be made. A
// healthy mount, a plain directory and a missing dir are left alone.
//
// The lazy unmount (MNT_DETACH) needs CAP_SYS_ADMIN; without it,
// fusermount3 -uz does the same for the mount's owner.
func CleanStale(dir string) error {
	var st unix.Stat_t
	err := unix.Stat(dir, &st)
	switch {
	case err == nil, errors.Is(err, unix.ENOENT):
		return nil
	case !errors.Is(err, unix.ENOTCONN) && !errors.Is(err, unix.ECONNABORTED):
		return fmt.Errorf("check %s for a dead mount: %w", dir, err)
	}
	detachErr := unix.Unmount(dir, unix.MNT_DETACH)
	if detachErr == nil {
		return nil
	}
	if out, err := exec.Command("fusermount3", "-uz", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("detach dead mount %s: %v; fusermount3: %v: %s", dir, detachErr, err, out)
	}
	return nil
}
