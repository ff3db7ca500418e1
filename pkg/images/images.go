// Package images puts app images into k3s's containerd: a docker-save or OCI
// layout tarball, streamed (never copied to a temporary file), into namespace
// k8s.io, unpacked for k3s's snapshotter and pinned so that the kubelet's
// image garbage collection never removes it.
//
// An import either completes or leaves containerd as it was: everything it
// writes is held by a containerd lease until the image records are written
// last, and a failure deletes the lease (and with it the half-imported
// content and snapshots) before returning.
package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/leases"
	"github.com/containerd/containerd/plugin"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Defaults match k3s: its embedded containerd, the namespace the kubelet's
// CRI uses, and k3s's default snapshotter.
const (
	DefaultSocket      = "/run/k3s/containerd/containerd.sock"
	DefaultNamespace   = "k8s.io"
	DefaultSnapshotter = "overlayfs"

	// PinnedLabel=PinnedValue on an image record makes containerd's CRI
	// (1.7 and later, as shipped in k3s) report the image as pinned, and the
	// kubelet's image GC skips pinned images when the disk fills up.
	PinnedLabel = "io.cri-containerd.pinned"
	PinnedValue = "pinned"
)

const (
	// dialTimeout bounds connecting to containerd and its health check: a
	// local socket answers in milliseconds, so a few seconds means it is
	// not going to.
	dialTimeout = 3 * time.Second
	// leaseExpiry only matters if homelab dies mid-import: containerd then
	// collects the orphaned content once the lease expires.
	leaseExpiry = 24 * time.Hour
	// cleanupTimeout bounds removing a failed import's content, which must
	// happen even when the import's own context was cancelled.
	cleanupTimeout = 2 * time.Minute
)

// Importer imports images into one containerd. The zero value is k3s's
// containerd on this machine.
type Importer struct {
	// Socket is containerd's gRPC socket (DefaultSocket when empty).
	Socket string
	// Namespace is the containerd namespace (DefaultNamespace when empty).
	Namespace string
	// Snapshotter is the snapshotter images are unpacked for
	// (DefaultSnapshotter when empty).
	Snapshotter string
	// Platform is the platform images must run on, "os/arch[/variant]"
	// ("linux/" + runtime.GOARCH when empty).
	Platform string
	// Logger receives the containerd client's log lines (at their level;
	// most are debug). Nil drops them.
	Logger *slog.Logger
}

// ImportOptions say what to import.
type ImportOptions struct {
	// Name is the image name to store the image under ("nextjs-app:latest",
	// normalised to "docker.io/library/nextjs-app:latest"). When set, it is
	// the only name written: the archive's own tags select the image if it
	// holds several, but are not added, so that pinned images do not pile
	// up under every version tag ever deployed. When empty, the image is
	// stored under the names the archive gives it.
	Name string
}

// Result says what an import did.
type Result struct {
	// Names are the normalised image names that now point at the image.
	Names []string
	// Digest is the image's target digest (its manifest, or its index for a
	// multi-platform image): what a pod template can carry so that a new
	// image under a reused tag still rolls out.
	Digest digest.Digest
	// Platform is the platform that was unpacked ("linux/amd64").
	Platform string
	// Changed is false when the image was already there, pinned and
	// unpacked: nothing was written.
	Changed bool
}

// Image is an image as containerd has it.
type Image struct {
	Name   string
	Digest digest.Digest
	Pinned bool
	// Unpacked is whether the image is unpacked for the Importer's
	// snapshotter and platform, i.e. ready to start containers from.
	Unpacked bool
	Updated  time.Time
}

// NormalizeName returns the full name containerd and the kubelet know an
// image by: "nextjs-app" becomes "docker.io/library/nextjs-app:latest".
// Names with a digest are refused: an import gives a tag, not a digest.
func NormalizeName(name string) (string, error) {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return "", &InputError{Kind: ErrBadName, Detail: fmt.Sprintf("%q (want a name like nextjs-app:latest)", name), Err: err}
	}
	if _, ok := named.(reference.Digested); ok {
		return "", &InputError{Kind: ErrBadName, Detail: fmt.Sprintf("%q names a digest; give a tag like nextjs-app:latest", name)}
	}
	return reference.TagNameOnly(named).String(), nil
}

// Import reads an image archive from r (docker save or OCI image layout
// tarball, optionally gzip or zstd compressed), stores it in containerd,
// unpacks it and pins it. Only the wanted platform's content is kept.
// Errors for bad archives are *InputError or *PlatformError (IsBadInput);
// in every error case containerd is left as it was.
func (i *Importer) Import(ctx context.Context, r io.Reader, opts ImportOptions) (Result, error) {
	want, err := i.platform()
	if err != nil {
		return Result{}, err
	}
	var name string
	if opts.Name != "" {
		if name, err = NormalizeName(opts.Name); err != nil {
			return Result{}, err
		}
	}
	ctx = withLogger(ctx, i.Logger)
	client, err := i.connect(ctx, want)
	if err != nil {
		return Result{}, err
	}
	defer client.Close()

	ls := client.LeasesService()
	lease, err := ls.Create(ctx, leases.WithRandomID(), leases.WithExpiration(leaseExpiry))
	if err != nil {
		return Result{}, fmt.Errorf("containerd: create lease: %w", err)
	}
	res, err := i.importLeased(leases.WithLease(ctx, lease.ID), client, lease.ID, r, name, want)

	// Deleting the lease hands everything not referenced by an image record
	// to containerd's GC. After a failure, wait for the GC so that the
	// caller can rely on nothing being left behind.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var delOpts []leases.DeleteOpt
	if err != nil {
		delOpts = append(delOpts, leases.SynchronousDelete)
	}
	// A failed delete is not worth failing a good import for: the image
	// records reference everything they need, and the lease expires.
	_ = ls.Delete(cctx, lease, delOpts...)
	return res, err
}

func (i *Importer) importLeased(ctx context.Context, client *containerd.Client, leaseID string, r io.Reader, name string, want ocispec.Platform) (Result, error) {
	cs := &scopedStore{Store: client.ContentStore(), prefix: "homelab-import-" + leaseID + "-"}
	img, err := readArchive(ctx, cs, r, name, want)
	if err != nil {
		return Result{}, err
	}
	target, names, match := img.target, img.names, img.match
	matcher := platforms.Only(want)
	res := Result{Names: names, Digest: target.Digest, Platform: platforms.Format(match.platform)}

	is := client.ImageService()
	ci := containerd.NewImageWithPlatform(client, images.Image{Name: names[0], Target: target}, matcher)
	existing, upToDate, err := i.current(ctx, is, ci, names, target.Digest)
	if err != nil {
		return Result{}, err
	}
	if upToDate {
		return res, nil
	}

	// Label the image's content as referenced from its root (for the wanted
	// platform only), so that once the lease is gone the image record alone
	// keeps it; content of other platforms is left to the GC.
	handler := images.SetChildrenLabels(cs, images.FilterPlatforms(images.ChildrenHandler(cs), matcher))
	if err := images.Walk(ctx, handler, target); err != nil {
		return Result{}, contentError(ctx, err, "label image content")
	}
	if err := ci.Unpack(ctx, i.snapshotter()); err != nil {
		return Result{}, i.unpackError(ctx, cs, match.desc, err)
	}
	if err := writeRecords(ctx, is, names, target, existing); err != nil {
		return Result{}, err
	}
	res.Changed = true
	return res, nil
}

// current reports the records that already exist under names, and whether
// all of them already are this image, pinned and unpacked.
func (i *Importer) current(ctx context.Context, is images.Store, ci containerd.Image, names []string, dgst digest.Digest) (map[string]images.Image, bool, error) {
	existing := map[string]images.Image{}
	same := true
	for _, n := range names {
		cur, err := is.Get(ctx, n)
		if errdefs.IsNotFound(err) {
			same = false
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("containerd: get image %s: %w", n, err)
		}
		existing[n] = cur
		if cur.Target.Digest != dgst || cur.Labels[PinnedLabel] != PinnedValue {
			same = false
		}
	}
	if !same {
		return existing, false, nil
	}
	unpacked, err := ci.IsUnpacked(ctx, i.snapshotter())
	if err != nil && !errdefs.IsNotFound(err) {
		return nil, false, fmt.Errorf("containerd: check unpacked: %w", err)
	}
	return existing, unpacked, nil
}

// writeRecords points every name at target, pinned. It is the import's last
// step; if one name fails, the names already written are put back.
func writeRecords(ctx context.Context, is images.Store, names []string, target ocispec.Descriptor, existing map[string]images.Image) error {
	var written []string
	undo := func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		for _, n := range written {
			if prev, ok := existing[n]; ok {
				_, _ = is.Update(uctx, prev, "target", "labels")
			} else {
				_ = is.Delete(uctx, n)
			}
		}
	}
	for _, n := range names {
		rec := images.Image{Name: n, Target: target, Labels: map[string]string{PinnedLabel: PinnedValue}}
		var err error
		if _, ok := existing[n]; ok {
			// Only the target and our label: labels others put on the
			// record (CRI's own) stay.
			_, err = is.Update(ctx, rec, "target", "labels."+PinnedLabel)
		} else {
			_, err = is.Create(ctx, rec)
		}
		if err != nil {
			undo()
			return fmt.Errorf("containerd: write image %s: %w", n, err)
		}
		written = append(written, n)
	}
	return nil
}

// Lookup returns the image containerd has under name.
func (i *Importer) Lookup(ctx context.Context, name string) (Image, error) {
	named, err := reference.ParseDockerRef(name)
	if err != nil {
		return Image{}, &InputError{Kind: ErrBadName, Detail: fmt.Sprintf("%q", name), Err: err}
	}
	want, err := i.platform()
	if err != nil {
		return Image{}, err
	}
	ctx = withLogger(ctx, i.Logger)
	client, err := i.connect(ctx, want)
	if err != nil {
		return Image{}, err
	}
	defer client.Close()
	rec, err := client.ImageService().Get(ctx, named.String())
	if errdefs.IsNotFound(err) {
		return Image{}, fmt.Errorf("%s: %w", named, ErrImageNotFound)
	}
	if err != nil {
		return Image{}, fmt.Errorf("containerd: get image %s: %w", named, err)
	}
	img := Image{
		Name:    rec.Name,
		Digest:  rec.Target.Digest,
		Pinned:  rec.Labels[PinnedLabel] == PinnedValue,
		Updated: rec.UpdatedAt,
	}
	ci := containerd.NewImageWithPlatform(client, rec, platforms.Only(want))
	img.Unpacked, err = ci.IsUnpacked(ctx, i.snapshotter())
	// NotFound: content missing or no manifest for this platform, so not
	// something containers can start from.
	if err != nil && !errdefs.IsNotFound(err) {
		return Image{}, fmt.Errorf("containerd: check unpacked %s: %w", named, err)
	}
	return img, nil
}

// connect dials containerd, failing within a few seconds with the socket's
// path when it is missing or nothing answers.
func (i *Importer) connect(ctx context.Context, want ocispec.Platform) (*containerd.Client, error) {
	sock := i.socket()
	if _, err := os.Stat(sock); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &UnavailableError{Socket: sock, Reason: "does not exist"}
		}
		if errors.Is(err, fs.ErrPermission) {
			return nil, &UnavailableError{Socket: sock, Reason: "permission denied (run homelab as root)"}
		}
		return nil, &UnavailableError{Socket: sock, Reason: "cannot be checked", Err: err}
	}
	client, err := containerd.New(sock,
		containerd.WithDefaultNamespace(i.namespace()),
		containerd.WithTimeout(dialTimeout),
		containerd.WithDefaultPlatform(platforms.Only(want)),
		// Naming the runtime skips New's lookup of the namespace's default
		// runtime, a call made without any deadline; importing never
		// starts a container anyway.
		containerd.WithDefaultRuntime(plugin.RuntimeRuncV2),
	)
	if err != nil {
		return nil, &UnavailableError{Socket: sock, Reason: dialReason(err), Err: err}
	}
	// A daemon can accept connections and still be wedged; ask it once,
	// briefly, rather than hang on the first real call.
	hctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	serving, err := client.IsServing(hctx)
	if err != nil || !serving {
		client.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &UnavailableError{Socket: sock, Reason: fmt.Sprintf("containerd does not answer its health check within %s", dialTimeout), Err: err}
	}
	return client, nil
}

func dialReason(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, syscall.EACCES) || strings.Contains(msg, "permission denied"):
		return "permission denied (run homelab as root)"
	case errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(msg, "connection refused"):
		return "nothing is listening on it (a stale socket file)"
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "deadline exceeded"):
		return fmt.Sprintf("no answer within %s", dialTimeout)
	}
	return "cannot connect"
}

func (i *Importer) socket() string {
	if i.Socket != "" {
		return i.Socket
	}
	return DefaultSocket
}

func (i *Importer) namespace() string {
	if i.Namespace != "" {
		return i.Namespace
	}
	return DefaultNamespace
}

func (i *Importer) snapshotter() string {
	if i.Snapshotter != "" {
		return i.Snapshotter
	}
	return DefaultSnapshotter
}

func (i *Importer) platform() (ocispec.Platform, error) {
	s := i.Platform
	if s == "" {
		s = "linux/" + runtime.GOARCH
	}
	p, err := platforms.Parse(s)
	if err != nil {
		return ocispec.Platform{}, fmt.Errorf("image platform %q: %w (want os/arch[/variant], e.g. linux/arm64)", s, err)
	}
	return platforms.Normalize(p), nil
}
