package gateway

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// The pages are plain HTML and JavaScript embedded in the binary: no build
// step, nothing to install, and they speak only the public API.
//
//go:embed web
var webFS embed.FS

func (s *Server) page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := webFS.ReadFile("web/" + name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self'")
		_, _ = w.Write(b)
	}
}

// assets serves the pages' files: files only (no directory listings), and
// the API's error shape for a name that is none of them.
func (s *Server) assets() http.Handler {
	files := mustSub(webFS, "web")
	serve := http.StripPrefix("/assets/", http.FileServerFS(files))
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		name := strings.TrimPrefix(r.URL.Path, "/assets/")
		if st, err := fs.Stat(files, name); err != nil || st.IsDir() {
			return errorf(codeNotFound, "no such asset: %s", r.URL.Path)
		}
		serve.ServeHTTP(w, r)
		return nil
	})
}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the embedded folder is fixed at build time
	}
	return sub
}
