package keyring

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const (
	proj   = "acme/cats/project-111"
	secret = "acme/cats/project-111/secrets/API_TOKEN"
)

func newTestMaster(t *testing.T) (*Master, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys", "master.key")
	m, err := CreateMaster(path)
	if err != nil {
		t.Fatalf("CreateMaster: %v", err)
	}
	return m, path
}

func TestRoundTrip(t *testing.T) {
	m, _ := newTestMaster(t)
	dek, err := m.NewDataKey(proj)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"empty", []byte{}},
		{"short", []byte("hunter2")},
		{"binary", []byte{0, 1, 2, 0xff, '\n', 0}},
		{"max size", bytes.Repeat([]byte{'x'}, MaxPlaintext)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sealed, err := m.Seal(dek, proj, secret, tc.value)
			if err != nil {
				t.Fatal(err)
			}
			if sealed[0] != formatV1 {
				t.Errorf("version byte = %d, want %d", sealed[0], formatV1)
			}
			if len(tc.value) >= 4 && bytes.Contains(sealed, tc.value) {
				t.Error("ciphertext contains the plaintext")
			}
			got, err := m.Open(dek, proj, secret, sealed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.value) {
				t.Errorf("Open = %q, want %q", got, tc.value)
			}
		})
	}
}

// TestSealIsRandomized guards against a nonce bug: two sealings of the same
// value must differ, or equal secrets would be recognizable in the log.
func TestSealIsRandomized(t *testing.T) {
	m, _ := newTestMaster(t)
	dek, _ := m.NewDataKey(proj)
	a, _ := m.Seal(dek, proj, secret, []byte("same"))
	b, _ := m.Seal(dek, proj, secret, []byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("two sealings of the same value are identical")
	}
}

func TestOpenMismatch(t *testing.T) {
	m, _ := newTestMaster(t)
	other, _ := newTestMaster(t)

	dek, _ := m.NewDataKey(proj)
	otherDEK, _ := m.NewDataKey(proj) // same project, different data key
	dekB, _ := m.NewDataKey("acme/cats/project-222")
	sealed, err := m.Seal(dek, proj, secret, []byte("s3cr3t-value"))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		m       *Master
		dek     []byte
		project string
		path    string
		sealed  []byte
	}{
		{"wrong path (moved secret)", m, dek, proj, proj + "/secrets/OTHER", sealed},
		{"wrong project, same wrapped DEK", m, dek, "acme/cats/project-222", secret, sealed},
		{"other project's DEK", m, dekB, "acme/cats/project-222", secret, sealed},
		{"other DEK of same project", m, otherDEK, proj, secret, sealed},
		{"wrong master key", other, dek, proj, secret, sealed},
		{"truncated", m, dek, proj, secret, sealed[:len(sealed)-1]},
		{"too short", m, dek, proj, secret, sealed[:5]},
		{"empty", m, dek, proj, secret, nil},
		{"unknown version", m, dek, proj, secret, withByte(sealed, 0, 9)},
		{"flipped nonce bit", m, dek, proj, secret, withByte(sealed, 1, sealed[1]^1)},
		{"flipped ciphertext bit", m, dek, proj, secret, withByte(sealed, 14, sealed[14]^0x80)},
		{"flipped tag bit", m, dek, proj, secret, withByte(sealed, len(sealed)-1, sealed[len(sealed)-1]^1)},
		{"tampered wrapped DEK", m, withByte(dek, 20, dek[20]^1), proj, secret, sealed},
		{"truncated wrapped DEK", m, dek[:10], proj, secret, sealed},
		{"check value as DEK", m, mustCheck(t, m), proj, secret, sealed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.m.Open(tc.dek, tc.project, tc.path, tc.sealed)
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Open = %q, %v; want ErrDecrypt", got, err)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error text leaks the plaintext: %v", err)
			}
		})
	}
}

func TestInvalidInput(t *testing.T) {
	m, _ := newTestMaster(t)
	dek, _ := m.NewDataKey(proj)
	if _, err := m.NewDataKey(""); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("NewDataKey(\"\") = %v, want ErrInvalidInput", err)
	}
	if _, err := m.Seal(dek, proj, "", []byte("x")); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("Seal with empty path = %v, want ErrInvalidInput", err)
	}
	if _, err := m.Seal(dek, "", secret, []byte("x")); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("Seal with empty project = %v, want ErrInvalidInput", err)
	}
	if _, err := m.Seal(dek, proj, secret, make([]byte, MaxPlaintext+1)); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("Seal of oversized value = %v, want ErrInvalidInput", err)
	}
	if _, err := m.Open(dek, proj, "", []byte("x")); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("Open with empty path = %v, want ErrInvalidInput", err)
	}
}

func TestCheckValue(t *testing.T) {
	m, path := newTestMaster(t)
	other, _ := newTestMaster(t)
	check := mustCheck(t, m)

	reloaded, err := LoadMaster(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		m     *Master
		check []byte
		want  error
	}{
		{"same key", m, check, nil},
		{"same key reloaded from file", reloaded, check, nil},
		{"other key", other, check, ErrWrongMasterKey},
		{"tampered", m, withByte(check, 20, check[20]^1), ErrWrongMasterKey},
		{"empty", m, nil, ErrWrongMasterKey},
		{"garbage", m, bytes.Repeat([]byte{1}, 64), ErrWrongMasterKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.m.Verify(tc.check)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestReloadedKeyOpensOldSecrets is the restart case: a secret sealed
// before a restart must open with the key loaded from disk after it.
func TestReloadedKeyOpensOldSecrets(t *testing.T) {
	m, path := newTestMaster(t)
	dek, _ := m.NewDataKey(proj)
	sealed, _ := m.Seal(dek, proj, secret, []byte("value"))

	m2, err := LoadMaster(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m2.Open(dek, proj, secret, sealed)
	if err != nil || string(got) != "value" {
		t.Fatalf("Open after reload = %q, %v", got, err)
	}
}

func TestCreateMasterFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "keys")
	path := filepath.Join(dir, "master.key")
	if _, err := CreateMaster(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || st.Size() != MasterKeySize {
		t.Errorf("key file: mode %04o size %d; want 0600 and %d", st.Mode().Perm(), st.Size(), MasterKeySize)
	}
	dst, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if dst.Mode().Perm() != 0o700 {
		t.Errorf("key dir mode %04o, want 0700", dst.Mode().Perm())
	}
	// No temporary file may be left beside the key.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("key dir holds %d entries, want only the key", len(entries))
	}
}

func TestCreateMasterRefusesOverwrite(t *testing.T) {
	_, path := newTestMaster(t)
	before, _ := os.ReadFile(path)

	if _, err := CreateMaster(path); !errors.Is(err, ErrMasterKeyExists) {
		t.Fatalf("second CreateMaster = %v, want ErrMasterKeyExists", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("CreateMaster changed an existing key file")
	}

	// A dangling symlink counts as existing too: following it would
	// write the key somewhere unexpected.
	link := filepath.Join(t.TempDir(), "link.key")
	if err := os.Symlink(filepath.Join(t.TempDir(), "nowhere"), link); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateMaster(link); !errors.Is(err, ErrMasterKeyExists) {
		t.Fatalf("CreateMaster over a symlink = %v, want ErrMasterKeyExists", err)
	}
}

func TestCreateMasterConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := CreateMaster(path); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, ErrMasterKeyExists) {
				t.Errorf("CreateMaster: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d concurrent CreateMaster calls succeeded, want exactly 1", wins)
	}
}

func TestLoadMasterErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := bytes.Repeat([]byte{0xAB}, MasterKeySize)

	for _, tc := range []struct {
		name     string
		path     string
		want     error
		contains []string
	}{
		{"missing", filepath.Join(dir, "absent.key"), ErrNoMasterKey, []string{"absent.key", "not found"}},
		{"empty", write("empty.key", nil, 0o600), ErrBadMasterKey, []string{"empty.key", "0 bytes", "32"}},
		{"short", write("short.key", key[:16], 0o600), ErrBadMasterKey, []string{"short.key", "16 bytes"}},
		{"long", write("long.key", append(key, '\n'), 0o600), ErrBadMasterKey, []string{"long.key", "33 bytes"}},
		{"world readable", write("open.key", key, 0o644), ErrBadMasterKey, []string{"open.key", "0644", "chmod 600"}},
		{"directory", dir, ErrBadMasterKey, []string{"not a regular file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := LoadMaster(tc.path)
			if !errors.Is(err, tc.want) {
				t.Fatalf("LoadMaster = %v, %v; want %v", m, err, tc.want)
			}
			for _, s := range tc.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			// The message must never echo key bytes.
			if strings.Contains(strings.ToLower(err.Error()), "abab") {
				t.Errorf("error %q leaks key bytes", err)
			}
		})
	}

	ok := write("good.key", key, 0o600)
	if _, err := LoadMaster(ok); err != nil {
		t.Fatalf("LoadMaster of a good key: %v", err)
	}
}

func TestMasterIsRedacted(t *testing.T) {
	m, _ := newTestMaster(t)
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(format, m); !strings.Contains(s, "redacted") {
			t.Errorf("%s of Master = %q, want redacted", format, s)
		}
	}
}

// TestDEKCacheBounded checks that the unwrapped-key cache never grows past
// its bound and still returns correct keys after evictions.
func TestDEKCacheBounded(t *testing.T) {
	m, _ := newTestMaster(t)
	type item struct {
		project string
		dek     []byte
		sealed  []byte
	}
	var items []item
	for i := range dekCacheSize + 50 {
		p := "acme/c/p" + strconv.Itoa(i)
		dek, _ := m.NewDataKey(p)
		sealed, err := m.Seal(dek, p, p+"/secrets/S", []byte(p))
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, item{p, dek, sealed})
	}
	if n := m.lru.Len(); n != dekCacheSize || len(m.cache) != dekCacheSize {
		t.Fatalf("cache holds %d/%d entries, want %d", n, len(m.cache), dekCacheSize)
	}
	for _, it := range items[:10] { // evicted ones must unwrap again
		got, err := m.Open(it.dek, it.project, it.project+"/secrets/S", it.sealed)
		if err != nil || string(got) != it.project {
			t.Fatalf("Open after eviction = %q, %v", got, err)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	m, _ := newTestMaster(t)
	dek, _ := m.NewDataKey(proj)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				v := []byte(strconv.Itoa(g*1000 + i))
				s, err := m.Seal(dek, proj, secret, v)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := m.Open(dek, proj, secret, s)
				if err != nil || !bytes.Equal(got, v) {
					t.Errorf("Open = %q, %v; want %q", got, err, v)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkOpenCached(b *testing.B) {
	path := filepath.Join(b.TempDir(), "master.key")
	m, err := CreateMaster(path)
	if err != nil {
		b.Fatal(err)
	}
	dek, _ := m.NewDataKey(proj)
	sealed, _ := m.Seal(dek, proj, secret, bytes.Repeat([]byte{'v'}, 64))
	b.ReportAllocs()
	for b.Loop() {
		pt, err := m.Open(dek, proj, secret, sealed)
		if err != nil {
			b.Fatal(err)
		}
		clear(pt)
	}
}

func withByte(b []byte, i int, v byte) []byte {
	c := bytes.Clone(b)
	c[i] = v
	return c
}

func mustCheck(t *testing.T, m *Master) []byte {
	t.Helper()
	c, err := m.CheckValue()
	if err != nil {
		t.Fatal(err)
	}
	return c
}
