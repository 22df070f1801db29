package vfs

import "fmt"

// MaxNameLen is the longest name of any entity, secrets included.
const MaxNameLen = 63

// ValidSecretName reports, with the rule it breaks, whether name can name a
// secret: 1–63 characters of A-Z a-z 0-9 _, starting with a letter or _, so
// that every secret also works as an environment variable name.
func ValidSecretName(name string) error {
	if err := validLength(name); err != nil {
		return err
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		case '0' <= c && c <= '9':
			return fmt.Errorf("%w %q: a secret's name starts with a letter or _", ErrInvalidName, name)
		default:
			return fmt.Errorf("%w %q: a secret's name has only A-Z a-z 0-9 _", ErrInvalidName, name)
		}
	}
	return nil
}

// ValidResourceName reports, with the rule it breaks, whether name can name a
// resource other than a secret: 1–63 characters of a-z 0-9 -, starting with a
// letter.
func ValidResourceName(name string) error {
	if err := validLength(name); err != nil {
		return err
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z':
		case ('0' <= c && c <= '9' || c == '-') && i > 0:
		case '0' <= c && c <= '9' || c == '-':
			return fmt.Errorf("%w %q: a name starts with a letter", ErrInvalidName, name)
		default:
			return fmt.Errorf("%w %q: a name has only a-z 0-9 -", ErrInvalidName, name)
		}
	}
	return nil
}

// MaxEntryNameLen is the longest name of a file or directory in a dataset
// or a bucket: Linux's NAME_MAX.
const MaxEntryNameLen = 255

// ValidEntryName reports whether name can name a file or directory in a
// dataset or a bucket: what a Linux filesystem takes (1–255 bytes, no "/"
// and no NUL, not "." or ".."), less control characters, which are never
// what a person meant and break listings and object keys.
func ValidEntryName(name string) error {
	switch {
	case name == "" || len(name) > MaxEntryNameLen:
		return fmt.Errorf("%w: a name has 1 to %d bytes, not %d", ErrInvalidName, MaxEntryNameLen, len(name))
	case name == "." || name == "..":
		return fmt.Errorf("%w %q", ErrInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '/' || c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w %q: no / or control characters", ErrInvalidName, name)
		}
	}
	return nil
}

func validLength(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: a name has 1 to %d characters, not %d", ErrInvalidName, MaxNameLen, len(name))
	}
	return nil
}
