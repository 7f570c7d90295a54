package s3bundle

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
)

// cbcWriter encrypts what is written to it with AES-CBC and writes the
// ciphertext to w; Close adds PKCS#7 padding, as `openssl enc` does.
type cbcWriter struct {
	w    io.Writer
	mode cipher.BlockMode
	buf  []byte // ciphertext staging; the first len(pend) bytes are plaintext not yet a whole block
	pend int
}

func newCBCWriter(w io.Writer, key, iv []byte) (*cbcWriter, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	return &cbcWriter{w: w, mode: cipher.NewCBCEncrypter(block, iv), buf: make([]byte, 0, 1<<20)}, nil
}

func (c *cbcWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), cap(c.buf)-len(c.buf))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if err := c.flush(false); err != nil {
			return n - len(p), err
		}
	}
	return n, nil
}

// flush encrypts and writes the whole blocks staged; with final, it pads first.
func (c *cbcWriter) flush(final bool) error {
	if final {
		pad := aes.BlockSize - len(c.buf)%aes.BlockSize
		for range pad {
			c.buf = append(c.buf, byte(pad))
		}
	}
	whole := len(c.buf) - len(c.buf)%aes.BlockSize
	if whole == 0 {
		return nil
	}
	c.mode.CryptBlocks(c.buf[:whole], c.buf[:whole])
	if _, err := c.w.Write(c.buf[:whole]); err != nil {
		return err
	}
	c.buf = c.buf[:copy(c.buf, c.buf[whole:])]
	return nil
}

// Close pads and writes the last block.
func (c *cbcWriter) Close() error { return c.flush(true) }

// cbcReader decrypts an AES-CBC stream and strips its PKCS#7 padding.
type cbcReader struct {
	r    io.Reader
	mode cipher.BlockMode
	in   []byte // ciphertext read but not decrypted (the last block waits for EOF)
	out  []byte // plaintext ready
	eof  bool
}

func newCBCReader(r io.Reader, key, iv []byte) (*cbcReader, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	return &cbcReader{r: r, mode: cipher.NewCBCDecrypter(block, iv)}, nil
}

var errPadding = errors.New("aes-cbc: bad padding or truncated ciphertext")

func (c *cbcReader) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.eof {
			return 0, io.EOF
		}
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// fill reads ciphertext and decrypts all whole blocks but the last, which
// is decrypted and unpadded at EOF.
func (c *cbcReader) fill() error {
	buf := make([]byte, 1<<20)
	n, err := io.ReadAtLeast(c.r, buf, aes.BlockSize)
	c.in = append(c.in, buf[:n]...)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		c.eof = true
	} else if err != nil {
		return err
	}
	keep := aes.BlockSize
	if c.eof {
		keep = 0
	}
	whole := len(c.in) - len(c.in)%aes.BlockSize - keep
	if c.eof && len(c.in)%aes.BlockSize != 0 || c.eof && len(c.in) == 0 {
		return errPadding
	}
	if whole <= 0 {
		return nil
	}
	out := make([]byte, whole)
	c.mode.CryptBlocks(out, c.in[:whole])
	c.in = c.in[whole:]
	if c.eof {
		pad := int(out[len(out)-1])
		if pad == 0 || pad > aes.BlockSize || pad > len(out) {
			return errPadding
		}
		for _, b := range out[len(out)-pad:] {
			if int(b) != pad {
				return errPadding
			}
		}
		out = out[:len(out)-pad]
	}
	c.out = out
	return nil
}
