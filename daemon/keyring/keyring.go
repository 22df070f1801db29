// Package keyring encrypts secret values before they reach the replicated
// state (SPEC §7).
//
// It is envelope encryption with AES-256-GCM: every project has a random
// 256-bit data key (DEK); the DEK is stored in the replicated state only in
// wrapped form, sealed by the cluster's master key with the project path as
// additional data; every secret value is sealed by its project's DEK with
// the project and the secret's entity path as additional data. Moving a
// sealed value or a wrapped DEK to another entity therefore makes it
// undecryptable instead of silently readable there.
//
// The master key lives in a 32-byte file on each node and never enters the
// replicated state. What does enter it at bootstrap is CheckValue, which lets
// every node find out at start-up whether it holds the cluster's key, so that
// a wrong key stops the daemon instead of serving garbage.
//
// See DESIGN.md for the formats and the reasoning behind them.
package keyring

import (
	"container/list"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Errors. None of their texts, nor the wrapped messages built on them, ever
// carry key material or plaintext: they name files, sizes and entity paths
// only, so they are safe to log and to return to a CLI caller.
var (
	// ErrNoMasterKey means the master key file does not exist. A node
	// must not invent a key on its own unless it is bootstrapping a new
	// cluster, so this is distinct from ErrBadMasterKey.
	ErrNoMasterKey = errors.New("keyring: master key file not found")

	// ErrBadMasterKey means the file exists but cannot be a master key:
	// wrong size, not a regular file, or readable by group or others.
	ErrBadMasterKey = errors.New("keyring: unusable master key file")

	// ErrMasterKeyExists is returned by CreateMaster instead of
	// overwriting a key, which would make every stored secret unreadable.
	ErrMasterKeyExists = errors.New("keyring: master key file already exists")

	// ErrWrongMasterKey means the loaded key is well-formed but is not
	// the one the cluster was bootstrapped with.
	ErrWrongMasterKey = errors.New("keyring: master key does not match this cluster's check value")

	// ErrDecrypt covers every reason a sealed value or wrapped DEK cannot
	// be opened: wrong key, wrong project or path (the value was moved),
	// tampering, truncation or an unknown format version. They are
	// deliberately not told apart to the caller beyond a short reason.
	ErrDecrypt = errors.New("keyring: cannot decrypt")

	// ErrInvalidInput means a caller passed an empty project or path, or
	// a value larger than MaxPlaintext.
	ErrInvalidInput = errors.New("keyring: invalid input")

	// Reasons open can fail, wrapped into ErrDecrypt's message. Private:
	// callers only need errors.Is(err, ErrDecrypt).
	errShort   = errors.New("too short")
	errVersion = errors.New("unknown format version")
	errAuth    = errors.New("authentication failed (wrong key, moved or altered)")
)

const (
	// MasterKeySize is the exact size of a master key file: an AES-256 key.
	MasterKeySize = 32

	// MaxPlaintext bounds a single secret value. Sealed values travel
	// through the Raft log, so this is a safety net against bloating it;
	// callers may enforce a smaller limit with a friendlier message.
	MaxPlaintext = 1 << 20

	// formatV1 is the leading byte of every wrapped DEK, sealed value and
	// check value produced by this version of the package. A later format
	// (say, key rotation with a key id) gets a new byte; Open keeps
	// accepting the old one.
	formatV1 byte = 1

	dekSize   = 32
	nonceSize = 12 // the standard GCM nonce; random nonces are fine at our volumes
	tagSize   = 16

	// dekCacheSize bounds the unwrapped-DEK cache. One entry per project
	// in active use; a few KiB each including the AES key schedule.
	dekCacheSize = 1024
)

// Domain-separation labels for the additional data. Distinct labels make a
// wrapped DEK, a sealed secret and the check value mutually incompatible,
// even though some of them are sealed under the same key.
const (
	labelDEK    = "sphere/keyring/dek"
	labelSecret = "sphere/keyring/secret"
	labelCheck  = "sphere/keyring/check"

	// checkPlaintext is the known constant sealed by CheckValue. It is
	// not secret; its only job is to prove which key sealed it.
	checkPlaintext = "sphere master key check v1"
)

// Master is a loaded cluster master key. It is safe for concurrent use.
//
// It keeps only the expanded AES cipher, not the raw key bytes, and its
// String/GoString methods are redacted so that a stray %v in a log line
// cannot print key material.
type Master struct {
	aead cipher.AEAD

	mu    sync.Mutex
	cache map[string]*list.Element // wrapped DEK + project → element in lru
	lru   *list.List               // of *dekEntry, most recent at the front
}

type dekEntry struct {
	key  string
	aead cipher.AEAD
}

// String keeps key material out of logs.
func (m *Master) String() string { return "keyring.Master{<redacted>}" }

// GoString keeps key material out of %#v output.
func (m *Master) GoString() string { return m.String() }

// LoadMaster reads the master key file at path.
//
// The file must be a regular file of exactly MasterKeySize bytes, not
// readable or writable by group or others (like ssh private keys: a
// world-readable master key exposes every secret of the cluster).
func LoadMaster(path string) (*Master, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (a new cluster creates it at bootstrap; every node of a cluster needs a copy of the same file)", ErrNoMasterKey, path)
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: open master key: %w", err)
	}
	defer f.Close()

	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keyring: stat master key: %w", err)
	}
	switch {
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrBadMasterKey, path)
	case st.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("%w: %s has permissions %04o, which let other users read it; run chmod 600 on it", ErrBadMasterKey, path, st.Mode().Perm())
	case st.Size() != MasterKeySize:
		return nil, fmt.Errorf("%w: %s is %d bytes, a master key is exactly %d bytes", ErrBadMasterKey, path, st.Size(), MasterKeySize)
	}

	// Read one byte more than needed so a file that grew between Stat
	// and now is still caught.
	buf := make([]byte, MasterKeySize+1)
	defer clear(buf)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("keyring: read master key %s: %w", path, err)
	}
	if n != MasterKeySize {
		return nil, fmt.Errorf("%w: %s is %d bytes, a master key is exactly %d bytes", ErrBadMasterKey, path, n, MasterKeySize)
	}
	return newMaster(buf[:MasterKeySize])
}

// CreateMaster generates a new random master key and writes it to path,
// creating the parent directory with mode 0700 if needed. It never
// overwrites an existing file: that would orphan every secret sealed under
// the old key.
//
// The key is written to a temporary file first and then hard-linked into
// place, so path either does not exist or holds a complete key, even if the
// process dies half-way; link(2) also fails atomically if path exists.
func CreateMaster(path string) (*Master, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%w: %s (refusing to overwrite it: that would make every stored secret unreadable)", ErrMasterKeyExists, path)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keyring: create master key directory: %w", err)
	}

	key := make([]byte, MasterKeySize)
	defer clear(key)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("keyring: generate master key: %w", err)
	}

	tmp, err := writeTemp(dir, filepath.Base(path), key)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)

	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%w: %s (refusing to overwrite it: that would make every stored secret unreadable)", ErrMasterKeyExists, path)
		}
		return nil, fmt.Errorf("keyring: install master key: %w", err)
	}
	syncDir(dir)
	return newMaster(key)
}

// writeTemp writes key to a new 0600 file in dir, synced to disk, and
// returns its name.
func writeTemp(dir, base string, key []byte) (string, error) {
	suffix := make([]byte, 8)
	if _, err := rand.Read(suffix); err != nil {
		return "", fmt.Errorf("keyring: temp name: %w", err)
	}
	name := filepath.Join(dir, fmt.Sprintf(".%s.tmp-%x", base, suffix))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("keyring: create master key: %w", err)
	}
	// The umask can only remove bits, but be explicit in case the mode
	// was ever widened by a default ACL.
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(key)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", fmt.Errorf("keyring: write master key: %w", err)
	}
	return name, nil
}

// syncDir makes the new directory entry durable. Failure is not fatal: the
// key file itself is already synced, and some filesystems refuse fsync on
// directories.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

func newMaster(key []byte) (*Master, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return &Master{aead: aead, cache: make(map[string]*list.Element), lru: list.New()}, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return aead, nil
}

// CheckValue returns a fresh sealing of a known constant under the master
// key. Store it in the replicated state when the cluster is bootstrapped;
// every node later calls Verify on it before serving anything.
func (m *Master) CheckValue() ([]byte, error) {
	return seal(m.aead, []byte(checkPlaintext), aad(labelCheck))
}

// Verify reports whether check was produced by CheckValue of this key.
// Any failure, including a malformed check value, is ErrWrongMasterKey: the
// only safe reaction to either is to refuse to start.
func (m *Master) Verify(check []byte) error {
	pt, err := open(m.aead, check, aad(labelCheck))
	if err != nil {
		return fmt.Errorf("%w (the key file on this node is not the one the cluster was created with)", ErrWrongMasterKey)
	}
	if subtle.ConstantTimeCompare(pt, []byte(checkPlaintext)) != 1 {
		return fmt.Errorf("%w (the check value holds an unexpected constant)", ErrWrongMasterKey)
	}
	return nil
}

// NewDataKey generates a random data key for project and returns it
// wrapped by the master key, with the project path as additional data. The
// raw key never leaves this function.
func (m *Master) NewDataKey(project string) ([]byte, error) {
	if project == "" {
		return nil, fmt.Errorf("%w: empty project path", ErrInvalidInput)
	}
	dek := make([]byte, dekSize)
	defer clear(dek)
	if _, err := rand.Read(dek); err != nil {
		return nil, fmt.Errorf("keyring: generate data key: %w", err)
	}
	return seal(m.aead, dek, aad(labelDEK, project))
}

// Seal encrypts plaintext for the secret at path in project, with the
// project's wrapped data key. The result is safe to store in the replicated
// state. Seal does not retain or modify plaintext; wiping it is the
// caller's business.
func (m *Master) Seal(wrappedDEK []byte, project, path string, plaintext []byte) ([]byte, error) {
	if project == "" || path == "" {
		return nil, fmt.Errorf("%w: empty project or secret path", ErrInvalidInput)
	}
	if len(plaintext) > MaxPlaintext {
		return nil, fmt.Errorf("%w: secret value of %d bytes is over the %d-byte limit", ErrInvalidInput, len(plaintext), MaxPlaintext)
	}
	dek, err := m.unwrap(wrappedDEK, project)
	if err != nil {
		return nil, err
	}
	return seal(dek, plaintext, aad(labelSecret, project, path))
}

// Open decrypts a value made by Seal. It fails with ErrDecrypt when the
// value was sealed for another path or project, under another data key or
// master key, or was altered in any way. The returned slice is a fresh
// allocation the caller should clear once it has been used.
func (m *Master) Open(wrappedDEK []byte, project, path string, sealed []byte) ([]byte, error) {
	if project == "" || path == "" {
		return nil, fmt.Errorf("%w: empty project or secret path", ErrInvalidInput)
	}
	dek, err := m.unwrap(wrappedDEK, project)
	if err != nil {
		return nil, err
	}
	pt, err := open(dek, sealed, aad(labelSecret, project, path))
	if err != nil {
		return nil, fmt.Errorf("%w: secret %s: %v", ErrDecrypt, path, err)
	}
	return pt, nil
}

// unwrap returns the data key's AEAD, from the cache when possible: an AES
// key schedule plus a GCM open per secret read is cheap, but not free on a
// FUSE read path. The cache key includes the project, because the same
// wrapped bytes must not open under another project.
func (m *Master) unwrap(wrappedDEK []byte, project string) (cipher.AEAD, error) {
	ck := cacheKey(wrappedDEK, project)

	m.mu.Lock()
	if el, ok := m.cache[ck]; ok {
		m.lru.MoveToFront(el)
		aead := el.Value.(*dekEntry).aead
		m.mu.Unlock()
		return aead, nil
	}
	m.mu.Unlock()

	dek, err := open(m.aead, wrappedDEK, aad(labelDEK, project))
	if err != nil {
		return nil, fmt.Errorf("%w: data key of project %s: %v", ErrDecrypt, project, err)
	}
	defer clear(dek)
	if len(dek) != dekSize {
		return nil, fmt.Errorf("%w: data key of project %s has the wrong size", ErrDecrypt, project)
	}
	aead, err := newAEAD(dek)
	if err != nil {
		return nil, err
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.cache[ck]; ok { // another goroutine won the race
		m.lru.MoveToFront(el)
		return el.Value.(*dekEntry).aead, nil
	}
	m.cache[ck] = m.lru.PushFront(&dekEntry{key: ck, aead: aead})
	if m.lru.Len() > dekCacheSize {
		oldest := m.lru.Back()
		m.lru.Remove(oldest)
		delete(m.cache, oldest.Value.(*dekEntry).key)
	}
	return aead, nil
}

func cacheKey(wrappedDEK []byte, project string) string {
	b := make([]byte, 0, len(wrappedDEK)+len(project)+4)
	b = binary.BigEndian.AppendUint32(b, uint32(len(wrappedDEK)))
	b = append(b, wrappedDEK...)
	b = append(b, project...)
	return string(b)
}

// aad builds the additional data: a label, then length-prefixed fields, then
// the format version. Length prefixes keep ("a/b", "c") and ("a", "b/c")
// distinct whatever characters a path may hold; the version byte binds the
// format, so a value cannot be replayed under a future format's rules.
func aad(label string, fields ...string) []byte {
	n := len(label) + 1 + 1
	for _, f := range fields {
		n += 4 + len(f)
	}
	b := make([]byte, 0, n)
	b = append(b, label...)
	b = append(b, 0)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return append(b, formatV1)
}

// seal produces version | nonce | ciphertext+tag.
func seal(aead cipher.AEAD, plaintext, ad []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+tagSize)
	out[0] = formatV1
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("keyring: generate nonce: %w", err)
	}
	return aead.Seal(out, out[1:1+nonceSize], plaintext, ad), nil
}

func open(aead cipher.AEAD, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < 1+nonceSize+tagSize {
		return nil, errShort
	}
	if sealed[0] != formatV1 {
		return nil, errVersion
	}
	pt, err := aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], ad)
	if err != nil {
		return nil, errAuth
	}
	return pt, nil
}
