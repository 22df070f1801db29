package datastore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/sphere-sandbox/sphere/s3mount"
)

// s3Blobs keeps each blob as the object PREFIX+hash. It talks to MinIO with
// minio-go directly: a chunk is one whole-object GET or PUT, which needs
// none of the path, directory and partial-write machinery of s3mount.
type s3Blobs struct {
	c      *minio.Client
	bucket string
	prefix string // "" or ending in "/"
}

// NewS3Blobs opens a blob store in a bucket, creating the bucket if it is
// missing. endpoint is http(s)://HOST:PORT or, meaning http, HOST:PORT;
// prefix (may be empty) is prepended to every object key. It checks the
// credentials by asking whether the bucket exists.
func NewS3Blobs(ctx context.Context, endpoint, bucket, keyID, secret, prefix string) (Blobs, error) {
	b, err := newS3Blobs(ctx, endpoint, bucket, keyID, secret, prefix, 0)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// newS3Blobs is NewS3Blobs with minio-go's tries per request (0: its
// default, which backs off for seconds while a server is down).
func newS3Blobs(ctx context.Context, endpoint, bucket, keyID, secret, prefix string, tries int) (*s3Blobs, error) {
	secure := false
	host := endpoint
	if u, err := url.Parse(endpoint); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		if u.Host == "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" {
			return nil, fmt.Errorf("datastore: s3 endpoint %q: want http(s)://HOST:PORT", u.Redacted())
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	if err := s3mount.ValidateBucketName(bucket); err != nil {
		return nil, fmt.Errorf("datastore: s3: %w", err)
	}
	prefix, err := cleanPrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("datastore: s3: %w", err)
	}
	c, err := minio.New(host, &minio.Options{
		Creds:      credentials.NewStaticV4(keyID, secret, ""),
		Secure:     secure,
		MaxRetries: tries,
	})
	if err != nil {
		return nil, fmt.Errorf("datastore: s3 endpoint %q: %v", host, err)
	}
	b := &s3Blobs{c: c, bucket: bucket, prefix: prefix}
	ok, err := c.BucketExists(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("datastore: s3 %s bucket %s: %w: %w", host, bucket, ErrUnavailable, err)
	}
	if !ok {
		err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{})
		if err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
			return nil, fmt.Errorf("datastore: s3 %s: create bucket %s: %w: %w", host, bucket, ErrUnavailable, err)
		}
	}
	return b, nil
}

func (b *s3Blobs) key(hash string) string { return b.prefix + hash }

// isMissing tells a missing object from a failure.
func isMissing(err error) bool {
	code := minio.ToErrorResponse(err).Code
	return code == "NoSuchKey" || code == "NotFound"
}

func (b *s3Blobs) Put(ctx context.Context, hash string, data []byte) error {
	if !validHash(hash) {
		return fmt.Errorf("datastore: put: bad hash %q", hash)
	}
	// A HEAD is far cheaper than uploading a chunk, and re-uploading the
	// same dataset (or files sharing chunks) is common.
	if info, err := b.c.StatObject(ctx, b.bucket, b.key(hash), minio.StatObjectOptions{}); err == nil && info.Size == int64(len(data)) {
		return nil
	}
	_, err := b.c.PutObject(ctx, b.bucket, b.key(hash), bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		// The content is addressed by its SHA-256 and verified on every
		// read; signing it again over plain http would hash it twice more.
		DisableContentSha256: true,
	})
	if err != nil {
		return fmt.Errorf("s3 put %s/%s: %w", b.bucket, b.key(hash), err)
	}
	return nil
}

func (b *s3Blobs) Get(ctx context.Context, hash string) ([]byte, error) {
	if !validHash(hash) {
		return nil, fmt.Errorf("datastore: get: bad hash %q", hash)
	}
	obj, info, err := b.open(ctx, hash)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	data := make([]byte, info.Size)
	if _, err := io.ReadFull(obj, data); err != nil {
		return nil, fmt.Errorf("s3 get %s/%s: %w", b.bucket, b.key(hash), err)
	}
	return data, nil
}

func (b *s3Blobs) getInto(ctx context.Context, hash string, buf []byte) error {
	obj, info, err := b.open(ctx, hash)
	if err != nil {
		return err
	}
	defer obj.Close()
	if info.Size != int64(len(buf)) {
		return fmt.Errorf("s3 object %s/%s is %d bytes, want %d: %w", b.bucket, b.key(hash), info.Size, len(buf), errSize)
	}
	if _, err := io.ReadFull(obj, buf); err != nil {
		return fmt.Errorf("s3 get %s/%s: %w", b.bucket, b.key(hash), err)
	}
	return nil
}

// open starts the GET; Stat sends it and reports the object's size from the
// response headers, so this is one request.
func (b *s3Blobs) open(ctx context.Context, hash string) (*minio.Object, minio.ObjectInfo, error) {
	obj, err := b.c.GetObject(ctx, b.bucket, b.key(hash), minio.GetObjectOptions{})
	if err == nil {
		var info minio.ObjectInfo
		if info, err = obj.Stat(); err == nil {
			return obj, info, nil
		}
		obj.Close()
	}
	if isMissing(err) {
		return nil, minio.ObjectInfo{}, fmt.Errorf("s3 object %s/%s: %w", b.bucket, b.key(hash), ErrMissing)
	}
	return nil, minio.ObjectInfo{}, fmt.Errorf("s3 get %s/%s: %w", b.bucket, b.key(hash), err)
}
