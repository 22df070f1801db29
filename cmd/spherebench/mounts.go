package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// mountTimeout bounds how long a FUSE client may take to mount.
const mountTimeout = 30 * time.Second

// mountS3fs mounts the bucket with s3fs-fuse, as SPEC §12 describes.
func mountS3fs(ctx context.Context, c *cleanups, e *env) (peer, error) {
	dir, err := mountPoint(c, e, "s3fs")
	if err != nil {
		return nil, err
	}
	passwd := filepath.Join(e.work, "s3fs.passwd")
	if err := os.WriteFile(passwd, []byte(e.server.AccessKey+":"+e.server.SecretKey+"\n"), 0o600); err != nil {
		return nil, err
	}
	// -f: stay in the foreground, as our child, so we can always stop it.
	cmd := exec.Command("s3fs", bucket, dir, "-f",
		"-o", "passwd_file="+passwd,
		"-o", "url="+e.server.Endpoint,
		"-o", "use_path_request_style",
		"-o", "allow_other")
	if err := startMount(ctx, c, e, cmd, dir); err != nil {
		return nil, err
	}
	return &mountPeer{label: "s3fs-fuse", e: e, dir: dir}, nil
}

// mountRclone mounts the bucket with rclone mount, with default VFS
// settings (no write cache: writes stream).
func mountRclone(ctx context.Context, c *cleanups, e *env) (peer, error) {
	dir, err := mountPoint(c, e, "rclone")
	if err != nil {
		return nil, err
	}
	config := filepath.Join(e.work, "rclone.conf")
	if err := os.WriteFile(config, nil, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command("rclone", "mount", ":s3:"+bucket, dir,
		"--config", config,
		"--s3-provider", "Minio",
		"--s3-endpoint", e.server.Endpoint,
		"--s3-access-key-id", e.server.AccessKey,
		"--s3-secret-access-key", e.server.SecretKey,
		"--allow-other")
	// Debian's rclone refuses to start while AWS_CA_BUNDLE is set.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "AWS_CA_BUNDLE=") })
	if err := startMount(ctx, c, e, cmd, dir); err != nil {
		return nil, err
	}
	return &mountPeer{label: "rclone mount", e: e, dir: dir}, nil
}

// mountLoopback builds go-fuse's loopback example and mounts orig with it:
// the reference for FUSE over local disk. It returns the mount point.
func mountLoopback(ctx context.Context, c *cleanups, e *env, orig string) (string, error) {
	bin := filepath.Join(e.work, "loopback")
	if err := goBuild(ctx, bin, "github.com/hanwen/go-fuse/v2/example/loopback"); err != nil {
		return "", err
	}
	dir, err := mountPoint(c, e, "loopback-mnt")
	if err != nil {
		return "", err
	}
	if err := startMount(ctx, c, e, exec.Command(bin, "-q", dir, orig), dir); err != nil {
		return "", err
	}
	return dir, nil
}

// mountPoint makes an empty directory to mount on.
func mountPoint(c *cleanups, e *env, name string) (string, error) {
	dir := filepath.Join(e.work, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	// os.Remove, not RemoveAll: if the unmount failed, this must not
	// delete the bucket's objects through the mount.
	c.add(func() { os.Remove(dir) })
	return dir, nil
}

// startMount runs a FUSE client in the background and waits until dir is
// a mount point. The clean-up unmounts and then stops the process.
func startMount(ctx context.Context, c *cleanups, e *env, cmd *exec.Cmd, dir string) error {
	name := filepath.Base(cmd.Path)
	logPath := filepath.Join(e.work, name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	say("mounting %s on %s", name, dir)
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); log.Close() }()
	c.add(func() { unmount(dir, cmd, exited) })

	deadline := time.After(mountTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		mounted, err := isMountPoint(dir)
		if err != nil || mounted {
			return err
		}
		select {
		case err := <-exited:
			exited <- err // for the clean-up
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("%s exited before mounting (%v): %s", name, err, out)
		case <-deadline:
			return fmt.Errorf("%s did not mount %s within %v (log: %s)", name, dir, mountTimeout, logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// unmount detaches dir and waits for the client to exit, killing it if it
// does not. A busy mount is detached lazily rather than left behind.
func unmount(dir string, cmd *exec.Cmd, exited chan error) {
	if mounted, _ := isMountPoint(dir); mounted {
		if out, err := exec.Command("fusermount3", "-u", dir).CombinedOutput(); err != nil {
			say("fusermount3 -u %s: %v: %s; detaching lazily", dir, err, strings.TrimSpace(string(out)))
			_ = exec.Command("umount", "-l", dir).Run()
		}
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// isMountPoint reports whether dir is in this process's mount table.
func isMountPoint(dir string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// Field 5 is the mount point, with spaces escaped as \040.
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && strings.ReplaceAll(fields[4], `\040`, " ") == dir {
			return true, nil
		}
	}
	return false, s.Err()
}
