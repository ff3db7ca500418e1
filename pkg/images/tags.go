package images

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/containerd/containerd/errdefs"
	containerdimages "github.com/containerd/containerd/images"
	"github.com/distribution/reference"
)

// Tag points name to at the image that from names, pinned, so each deployed
// build keeps a name of its own (and survives garbage collection) after the
// app's tag moves on. Tagging the same image again changes nothing.
func (i *Importer) Tag(ctx context.Context, from, to string) error {
	src, err := reference.ParseDockerRef(from)
	if err != nil {
		return &InputError{Kind: ErrBadName, Detail: fmt.Sprintf("%q", from), Err: err}
	}
	dst, err := reference.ParseDockerRef(to)
	if err != nil {
		return &InputError{Kind: ErrBadName, Detail: fmt.Sprintf("%q", to), Err: err}
	}
	want, err := i.platform()
	if err != nil {
		return err
	}
	ctx = withLogger(ctx, i.Logger)
	client, err := i.connect(ctx, want)
	if err != nil {
		return err
	}
	defer client.Close()
	is := client.ImageService()
	rec, err := is.Get(ctx, src.String())
	if err != nil {
		return fmt.Errorf("containerd: get image %s: %w", src, err)
	}
	existing := map[string]containerdimages.Image{}
	if cur, err := is.Get(ctx, dst.String()); err == nil {
		if cur.Target.Digest == rec.Target.Digest && cur.Labels[PinnedLabel] == PinnedValue {
			return nil
		}
		existing[dst.String()] = cur
	} else if !errdefs.IsNotFound(err) {
		return fmt.Errorf("containerd: get image %s: %w", dst, err)
	}
	return writeRecords(ctx, is, []string{dst.String()}, rec.Target, existing)
}

// Tags lists the images of repository repo whose tag starts with prefix,
// newest first.
func (i *Importer) Tags(ctx context.Context, repo, prefix string) ([]Image, error) {
	named, err := reference.ParseNormalizedNamed(repo)
	if err != nil {
		return nil, &InputError{Kind: ErrBadName, Detail: fmt.Sprintf("%q", repo), Err: err}
	}
	want, err := i.platform()
	if err != nil {
		return nil, err
	}
	ctx = withLogger(ctx, i.Logger)
	client, err := i.connect(ctx, want)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	recs, err := client.ImageService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("containerd: list images: %w", err)
	}
	base := named.Name() + ":" + prefix
	var out []Image
	for _, r := range recs {
		if strings.HasPrefix(r.Name, base) {
			out = append(out, Image{Name: r.Name, Digest: r.Target.Digest, Pinned: r.Labels[PinnedLabel] == PinnedValue, Updated: r.UpdatedAt})
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Updated.After(out[b].Updated) })
	return out, nil
}

// Remove deletes an image record; containerd collects its content once no
// other record uses it. A missing image is not an error.
func (i *Importer) Remove(ctx context.Context, name string) error {
	want, err := i.platform()
	if err != nil {
		return err
	}
	ctx = withLogger(ctx, i.Logger)
	client, err := i.connect(ctx, want)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.ImageService().Delete(ctx, name); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("containerd: remove image %s: %w", name, err)
	}
	return nil
}
