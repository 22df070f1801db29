package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The notebook workflow, for real: a Jupyter notebook executed with
// `jupyter nbconvert --execute` as a non-root uid lists the project's
// datasets/ and secrets/, reads a secret it may read, and gets a
// PermissionError on one it may not.
func TestNotebookReadsTheProject(t *testing.T) {
	nbconvert, err := exec.LookPath("jupyter-nbconvert")
	if err != nil {
		t.Fatal("jupyter-nbconvert is not installed; scripts/deps.sh installs it")
	}
	p := newProject(t, "closed-value")
	runAsOK(t, p.node, 0, []byte("open-value"), "secret", "create", projectPath, "OPEN")
	// carol sees the project and may use only the secret OPEN.
	p.ok(0, "user", "add", "carol", "--uid", "1003")
	p.ok(0, "role", "grant", "datasphere.community-projects.viewer", "--to", "user:carol", "--on", "project:"+projectPath)
	p.ok(0, "role", "grant", "datasphere.community-projects.developer", "--to", "user:carol", "--on", "resource:"+projectPath+"/secrets/OPEN")

	home := filepath.Join(p.dir, "carol-home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	code := func(src string) map[string]any {
		return map[string]any{"cell_type": "code", "metadata": map[string]any{}, "execution_count": nil, "outputs": []any{}, "source": src}
	}
	nb := map[string]any{
		"nbformat": 4, "nbformat_minor": 5,
		"metadata": map[string]any{"kernelspec": map[string]any{"name": "python3", "display_name": "Python 3", "language": "python"}},
		"cells": []any{
			code("import os\nmnt = " + pyString(p.mnt) + "\nprint('datasets:', sorted(os.listdir(os.path.join(mnt, 'datasets'))))\nprint('secrets:', sorted(os.listdir(os.path.join(mnt, 'secrets'))))"),
			code("print('open:', open(os.path.join(mnt, 'secrets', 'OPEN')).read())"),
			code("try:\n    open(os.path.join(mnt, 'secrets', 'TOKEN')).read()\n    print('closed: READ')\nexcept PermissionError:\n    print('closed: PermissionError')"),
		},
	}
	data, _ := json.Marshal(nb)
	in := filepath.Join(home, "project.ipynb")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := chownR(home, 1003); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nbconvert, "--to", "notebook", "--execute", "--output", "executed.ipynb", in)
	asUID(cmd, 1003)
	cmd.Dir = home
	cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "JUPYTER_RUNTIME_DIR=" + filepath.Join(home, "runtime"), "JUPYTER_PLATFORM_DIRS=1"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nbconvert: %v\n%s", err, out)
	}
	executed, err := os.ReadFile(filepath.Join(home, "executed.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(executed)
	for _, want := range []string{`datasets: []`, `secrets: ['OPEN', 'TOKEN']`, `open: open-value`, `closed: PermissionError`} {
		if !strings.Contains(text, want) {
			t.Errorf("the executed notebook lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "closed-value") {
		t.Errorf("the notebook read a secret it may not")
	}
}

func pyString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func chownR(dir string, uid int) error {
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(path, uid, uid)
	})
}
