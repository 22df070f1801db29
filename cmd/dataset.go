package cmd

import (
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/sphere-sandbox/sphere/daemon/api"
)

func cmdDataset() *cli.Command {
	return &cli.Command{
		Name:  "dataset",
		Usage: "datasets: files written while initializing, read-only and immutable once sealed",
		Subcommands: []*cli.Command{
			{Name: "create", Usage: "create an initializing dataset, optionally uploading a local folder", ArgsUsage: "ORG/C/P NAME",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "size", Usage: "size limit, e.g. 500M, 20G (bytes without a suffix); writes past it fail with ENOSPC"},
					&cli.StringFlag{Name: "from", Usage: "upload this local folder's files into the new dataset"},
					descriptionFlag,
				},
				Action: datasetCreate},
			{Name: "set", Usage: "change a dataset's size limit or description (sealed ones too: they are about the dataset, not its files)", ArgsUsage: "ORG/C/P NAME",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "size", Usage: "the new size limit, e.g. 500M, 20G; 0 removes it. A limit below what the dataset holds refuses further writes, and deletes nothing"},
					descriptionFlag,
				},
				Action: datasetSet},
			{Name: "seal", Usage: "make a dataset read-only and immutable, for good", ArgsUsage: "ORG/C/P NAME", Action: datasetSeal},
			{Name: "list", Usage: "list a project's datasets (own and published)", ArgsUsage: "ORG/C/P", Action: datasetList},
			{Name: "show", Usage: "show a dataset: state, size, files, creator, times", ArgsUsage: "ORG/C/P NAME", Action: datasetShow},
			{Name: "delete", Usage: "delete a dataset", ArgsUsage: "ORG/C/P NAME", Action: datasetDelete},
		},
	}
}

func datasetRef(project, name string) string { return "resource:" + project + "/datasets/" + name }

func datasetCreate(c *cli.Context) error {
	a, err := args(c, "ORG/C/P", "NAME")
	if err != nil {
		return err
	}
	var limit int64
	if s := c.String("size"); s != "" {
		if limit, err = parseSize(s); err != nil {
			return usagef("--size: %v", err)
		}
	}
	from := c.String("from")
	if from != "" {
		if fi, err := os.Stat(from); err != nil || !fi.IsDir() {
			return usagef("--from %s: not a readable folder", from)
		}
	}
	var e api.Entity
	if err := call(c, api.MDatasetCreate, api.DatasetCreateReq{Project: a[0], Name: a[1], SizeLimit: limit, Description: c.String("description")}, &e); err != nil {
		return err
	}
	if from != "" {
		if err := upload(c, datasetRef(a[0], a[1]), from); err != nil {
			return err
		}
		if err := call(c, api.MShow, api.RefReq{Ref: datasetRef(a[0], a[1])}, &e); err != nil {
			return err
		}
	}
	return printDataset(c, e)
}

// parseSize reads 123, 10K, 500M, 20G, 1T (powers of 1024; KiB/MB spellings too).
func parseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	mult := int64(1)
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			mult = int64(1) << (10 * (i + 1))
			t = t[:n-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size (e.g. 500M, 20G, or bytes)", s)
	}
	return n * mult, nil
}

type localFile struct {
	rel  string
	size int64
	mod  time.Time
}

// upload sends every regular file under dir, one request each, showing
// progress on a terminal.
func upload(c *cli.Context, dataset, dir string) error {
	var files []localFile
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			if !d.IsDir() {
				fmt.Fprintf(os.Stderr, "sphere: skipping %s: not a regular file\n", p)
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files = append(files, localFile{rel: filepath.ToSlash(rel), size: fi.Size(), mod: fi.ModTime()})
		total += fi.Size()
		return nil
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	bar := newProgress(len(files), total)
	defer bar.finish()
	client := dial(c)
	for i, f := range files {
		in, err := os.Open(filepath.Join(dir, f.rel))
		if err != nil {
			return fmt.Errorf("upload %s: %w", f.rel, err)
		}
		params := url.Values{"dataset": {dataset}, "path": {f.rel}, "mtime": {strconv.FormatInt(f.mod.UnixNano(), 10)}}
		err = client.Stream(c.Context, api.MDatasetUpload, params, bar.reader(in, i), nil)
		in.Close()
		if err != nil {
			return fmt.Errorf("upload %s: %w", f.rel, err)
		}
	}
	return nil
}

// progress draws one line on stderr when it is a terminal, and nothing
// otherwise: logs of scripted uploads stay clean.
type progress struct {
	files      int
	total      int64
	done       int64
	file       int
	tty        bool
	start      time.Time
	lastRedraw time.Time
}

func newProgress(files int, total int64) *progress {
	_, err := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS)
	return &progress{files: files, total: total, tty: err == nil, start: time.Now()}
}

func (p *progress) reader(r io.Reader, file int) io.Reader {
	p.file = file
	return progressReader{r: r, p: p}
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (pr progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.done += int64(n)
	if now := time.Now(); now.Sub(pr.p.lastRedraw) > 100*time.Millisecond || err == io.EOF {
		pr.p.lastRedraw = now
		pr.p.draw()
	}
	return n, err
}

func (p *progress) draw() {
	if !p.tty {
		return
	}
	pct := 100.0
	if p.total > 0 {
		pct = float64(p.done) * 100 / float64(p.total)
	}
	width := 30
	filled := int(pct / 100 * float64(width))
	fmt.Fprintf(os.Stderr, "\r[%s%s] %5.1f%%  file %d/%d  %s / %s", strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		pct, p.file+1, p.files, humanBytes(p.done), humanBytes(p.total))
}

func (p *progress) finish() {
	if p.tty {
		p.draw()
		fmt.Fprintln(os.Stderr)
	}
	fmt.Fprintf(os.Stderr, "uploaded %d files, %s in %s\n", p.files, humanBytes(p.done), time.Since(p.start).Round(time.Millisecond))
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func datasetSet(c *cli.Context) error {
	a, err := args(c, "ORG/C/P", "NAME")
	if err != nil {
		return err
	}
	req := setReq(c, datasetRef(a[0], a[1]))
	if c.IsSet("size") {
		limit, err := parseSize(c.String("size"))
		if err != nil {
			return usagef("--size: %v", err)
		}
		if limit == 0 {
			req.Unset = []string{"size-limit"}
		} else {
			req.Settings = map[string]string{"size-limit": strconv.FormatInt(limit, 10)}
		}
	}
	if req.Description == nil && req.Settings == nil && req.Unset == nil {
		return usagef("dataset set changes --size or --description; give at least one")
	}
	var e api.Entity
	if err := call(c, api.MSet, req, &e); err != nil {
		return err
	}
	return printDataset(c, e)
}

func datasetSeal(c *cli.Context) error {
	a, err := args(c, "ORG/C/P", "NAME")
	if err != nil {
		return err
	}
	var e api.Entity
	if err := call(c, api.MDatasetSeal, api.RefReq{Ref: datasetRef(a[0], a[1])}, &e); err != nil {
		return err
	}
	return printDataset(c, e)
}

func datasetList(c *cli.Context) error {
	a, err := args(c, "ORG/C/P")
	if err != nil {
		return err
	}
	var out []api.Entity
	if err := call(c, api.MList, api.ListReq{Kind: "resource", Type: "dataset", Parent: a[0]}, &out); err != nil {
		return err
	}
	return output(c, out, func(w io.Writer) {
		fmt.Fprintln(w, "PATH\tSTATE\tSIZE\tFILES\tLIMIT\tCREATOR\tCREATED (UTC)")
		for _, e := range out {
			path := e.Path
			if e.Owner != "" {
				path += " (published from " + e.Owner + ")"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", path, e.Settings["state"], humanBytes(e.Size), e.Files, limitText(e.Settings["size-limit"]), e.Creator, utc(e.Created))
		}
	})
}

func limitText(s string) string {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return "-"
	}
	return humanBytes(n)
}

func datasetShow(c *cli.Context) error {
	a, err := args(c, "ORG/C/P", "NAME")
	if err != nil {
		return err
	}
	var e api.Entity
	if err := call(c, api.MShow, api.RefReq{Ref: datasetRef(a[0], a[1])}, &e); err != nil {
		return err
	}
	return printDataset(c, e)
}

func printDataset(c *cli.Context, e api.Entity) error {
	return output(c, e, func(w io.Writer) {
		fmt.Fprintf(w, "dataset:\t%s\nstate:\t%s\nsize:\t%s (%d bytes)\nfiles:\t%d\nlimit:\t%s\ncreator:\t%s\ncreated:\t%s\nmodified:\t%s\ndescription:\t%s\n",
			e.Path, e.Settings["state"], humanBytes(e.Size), e.Size, e.Files, limitText(e.Settings["size-limit"]), e.Creator, utc(e.Created), utc(e.Modified), orDash(e.Description))
		if len(e.PublishedTo) > 0 {
			fmt.Fprintf(w, "published to:\t%s\n", strings.Join(e.PublishedTo, ", "))
		}
	})
}

func datasetDelete(c *cli.Context) error {
	a, err := args(c, "ORG/C/P", "NAME")
	if err != nil {
		return err
	}
	if err := call(c, api.MDelete, api.RefReq{Ref: datasetRef(a[0], a[1])}, nil); err != nil {
		return err
	}
	return output(c, map[string]string{"deleted": datasetRef(a[0], a[1])}, func(w io.Writer) { fmt.Fprintf(w, "deleted dataset %s\n", a[1]) })
}
