package gateway

import (
	"embed"
	"io/fs"
	"net/http"
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

func (s *Server) assets() http.Handler {
	return http.StripPrefix("/assets/", http.FileServerFS(mustSub(webFS, "web")))
}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the embedded folder is fixed at build time
	}
	return sub
}
