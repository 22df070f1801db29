package datastore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/sphere-sandbox/sphere/s3mount"
)

// s3Blobs keeps each blob as the object PREFIX+KEY. It talks to MinIO with
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

func (b *s3Blobs) object(key string) string { return b.prefix + key }

// isMissing tells a missing object from a failure.
func isMissing(err error) bool {
	code := minio.ToErrorResponse(err).Code
	return code == "NoSuchKey" || code == "NotFound"
}

func (b *s3Blobs) Put(ctx context.Context, key string, data []byte) error {
	if !validKey(key) {
		return fmt.Errorf("datastore: put: bad blob key %q", key)
	}
	// A HEAD is far cheaper than uploading a chunk, and re-uploading the
	// same dataset (or files sharing chunks) is common.
	if info, err := b.c.StatObject(ctx, b.bucket, b.object(key), minio.StatObjectOptions{}); err == nil && info.Size == int64(len(data)) {
		return nil
	}
	_, err := b.c.PutObject(ctx, b.bucket, b.object(key), bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		// The content is addressed by its SHA-256 and verified on every
		// read; signing it again over plain http would hash it twice more.
		DisableContentSha256: true,
	})
	if err != nil {
		return fmt.Errorf("s3 put %s/%s: %w", b.bucket, b.object(key), err)
	}
	return nil
}

func (b *s3Blobs) Get(ctx context.Context, key string) ([]byte, error) {
	if !validKey(key) {
		return nil, fmt.Errorf("datastore: get: bad blob key %q", key)
	}
	obj, info, err := b.open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	data := make([]byte, info.Size)
	if _, err := io.ReadFull(obj, data); err != nil {
		return nil, fmt.Errorf("s3 get %s/%s: %w", b.bucket, b.object(key), err)
	}
	return data, nil
}

func (b *s3Blobs) getInto(ctx context.Context, key string, buf []byte) error {
	obj, info, err := b.open(ctx, key)
	if err != nil {
		return err
	}
	defer obj.Close()
	if info.Size != int64(len(buf)) {
		return fmt.Errorf("s3 object %s/%s is %d bytes, want %d: %w", b.bucket, b.object(key), info.Size, len(buf), errSize)
	}
	if _, err := io.ReadFull(obj, buf); err != nil {
		return fmt.Errorf("s3 get %s/%s: %w", b.bucket, b.object(key), err)
	}
	return nil
}

// open starts the GET; Stat sends it and reports the object's size from the
// response headers, so this is one request.
func (b *s3Blobs) open(ctx context.Context, key string) (*minio.Object, minio.ObjectInfo, error) {
	obj, err := b.c.GetObject(ctx, b.bucket, b.object(key), minio.GetObjectOptions{})
	if err == nil {
		var info minio.ObjectInfo
		if info, err = obj.Stat(); err == nil {
			return obj, info, nil
		}
		obj.Close()
	}
	if isMissing(err) {
		return nil, minio.ObjectInfo{}, fmt.Errorf("s3 object %s/%s: %w", b.bucket, b.object(key), ErrMissing)
	}
	return nil, minio.ObjectInfo{}, fmt.Errorf("s3 get %s/%s: %w", b.bucket, b.object(key), err)
}

// List pages through the objects under the prefix; objects whose names are
// not blob keys are not the store's and are left out.
func (b *s3Blobs) List(ctx context.Context, fn func(BlobInfo) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio-go's lister when fn fails
	for obj := range b.c.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: b.prefix}) {
		if obj.Err != nil {
			return fmt.Errorf("s3 list %s/%s: %w", b.bucket, b.prefix, obj.Err)
		}
		key := strings.TrimPrefix(obj.Key, b.prefix)
		if !validKey(key) {
			continue
		}
		if err := fn(BlobInfo{Key: key, Size: obj.Size, Modified: obj.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (b *s3Blobs) Delete(ctx context.Context, key string) error {
	if !validKey(key) {
		return fmt.Errorf("datastore: delete: bad blob key %q", key)
	}
	if err := b.c.RemoveObject(ctx, b.bucket, b.object(key), minio.RemoveObjectOptions{}); err != nil && !isMissing(err) {
		return fmt.Errorf("s3 delete %s/%s: %w", b.bucket, b.object(key), err)
	}
	return nil
}
