package edge

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// webFile is one file of the UI, held in memory with its gzip form: the
// whole build is a few hundred kilobytes, read once at start.
type webFile struct {
	body, gzipped []byte
	contentType   string
	etag          string
}

// The pages' content security policy: scripts and styles come only from
// this server (Element Plus sets inline style attributes), and the pages
// talk only to their own origin, WebSockets included.
const pagePolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'"

// webRoutes serves the agent workspace at /workspace/, the chat widget at
// /chat/ and their hashed assets at /assets/ from Config.Web.
func (s *Server) webRoutes(app *fiber.App) error {
	if s.cfg.Web == nil {
		return nil
	}
	files := map[string]*webFile{}
	err := fs.WalkDir(s.cfg.Web, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(s.cfg.Web, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		f := &webFile{body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, contentType: mime.TypeByExtension(path.Ext(name))}
		if f.contentType == "" {
			f.contentType = "application/octet-stream"
		}
		if len(body) > 1024 && !strings.HasPrefix(f.contentType, "image/") {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			zw.Write(body)
			zw.Close()
			f.gzipped = buf.Bytes()
		}
		files[name] = f
		return nil
	})
	if err != nil {
		return err
	}
	workspace, chat := files["workspace/index.html"], files["chat/index.html"]
	if workspace == nil || chat == nil {
		return fs.ErrNotExist
	}
	ancestors := "*"
	if len(s.cfg.WidgetFrameAncestors) > 0 {
		ancestors = strings.Join(s.cfg.WidgetFrameAncestors, " ")
	}
	page := func(f *webFile, frameAncestors string) fiber.Handler {
		return func(c *fiber.Ctx) error {
			c.Set(fiber.HeaderContentSecurityPolicy, pagePolicy+"; frame-ancestors "+frameAncestors)
			if frameAncestors != "'none'" {
				c.Response().Header.Del(fiber.HeaderXFrameOptions)
			}
			// Pages are small and name their hashed assets: always revalidate.
			c.Set(fiber.HeaderCacheControl, "no-cache")
			return sendWebFile(c, f)
		}
	}
	app.Get("/", func(c *fiber.Ctx) error { return c.Redirect("/workspace/", fiber.StatusFound) })
	app.Get("/workspace", page(workspace, "'none'"))
	app.Get("/workspace/", page(workspace, "'none'"))
	app.Get("/chat", page(chat, ancestors))
	app.Get("/chat/", page(chat, ancestors))
	app.Get("/assets/:name", func(c *fiber.Ctx) error {
		f := files["assets/"+c.Params("name")]
		if f == nil {
			return fiber.ErrNotFound
		}
		// Asset names carry a hash of their content.
		c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
		return sendWebFile(c, f)
	})
	return nil
}

func sendWebFile(c *fiber.Ctx, f *webFile) error {
	c.Set(fiber.HeaderContentType, f.contentType)
	c.Set(fiber.HeaderETag, f.etag)
	c.Set(fiber.HeaderVary, fiber.HeaderAcceptEncoding)
	if c.Get(fiber.HeaderIfNoneMatch) == f.etag {
		return c.SendStatus(fiber.StatusNotModified)
	}
	if f.gzipped != nil && strings.Contains(c.Get(fiber.HeaderAcceptEncoding), "gzip") {
		c.Set(fiber.HeaderContentEncoding, "gzip")
		return c.Send(f.gzipped)
	}
	return c.Send(f.body)
}
