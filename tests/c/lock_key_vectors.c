/* A small strict JSON reader for the lock-key vectors; see lock_key_vectors.h. */
#include "lock_key_vectors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
  const char *text;
  size_t pos, len;
  char *err;
  size_t err_len;
  int failed;
} parser;

static int fail(parser *p, const char *fmt, ...) {
  va_list args;
  if (!p->failed && p->err != NULL && p->err_len > 0) {
    int n = snprintf(p->err, p->err_len, "at byte %lu: ", (unsigned long)p->pos);
    if (n > 0 && (size_t)n < p->err_len) {
      va_start(args, fmt);
      vsnprintf(p->err + n, p->err_len - (size_t)n, fmt, args);
      va_end(args);
    }
  }
  p->failed = 1;
  return 1;
}

static void skip_ws(parser *p) {
  while (p->pos < p->len && strchr(" \t\r\n", p->text[p->pos]) != NULL) p->pos++;
}

static int expect(parser *p, char c) {
  skip_ws(p);
  if (p->pos >= p->len || p->text[p->pos] != c) return fail(p, "expected '%c'", c);
  p->pos++;
  return 0;
}

/* Next non-space character without consuming it, or 0 at the end. */
static char peek(parser *p) {
  skip_ws(p);
  return p->pos < p->len ? p->text[p->pos] : '\0';
}

static int hex4(parser *p, unsigned *out) {
  unsigned v = 0;
  int i;
  if (p->pos + 4 > p->len) return fail(p, "short \\u escape");
  for (i = 0; i < 4; i++) {
    char c = p->text[p->pos++];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return fail(p, "bad \\u escape");
  }
  *out = v;
  return 0;
}

static void put_utf8(char *out, size_t *n, unsigned cp) {
  if (cp < 0x80) {
    out[(*n)++] = (char)cp;
  } else if (cp < 0x800) {
    out[(*n)++] = (char)(0xC0 | (cp >> 6));
    out[(*n)++] = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out[(*n)++] = (char)(0xE0 | (cp >> 12));
    out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[(*n)++] = (char)(0x80 | (cp & 0x3F));
  } else {
    out[(*n)++] = (char)(0xF0 | (cp >> 18));
    out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[(*n)++] = (char)(0x80 | (cp & 0x3F));
  }
}

/* A string (escapes decoded into a new buffer when `out` is not NULL). */
static int parse_string(parser *p, char **out) {
  char *buf = NULL;
  size_t n = 0;
  if (expect(p, '"')) return 1;
  /* Decoded text is never longer than its escaped source. */
  if (out != NULL && (buf = (char *)malloc(p->len - p->pos + 1)) == NULL) return fail(p, "out of memory");
  for (;;) {
    char c;
    if (p->pos >= p->len) {
      free(buf);
      return fail(p, "unterminated string");
    }
    c = p->text[p->pos++];
    if (c == '"') break;
    if ((unsigned char)c < 0x20) {
      free(buf);
      return fail(p, "control character in a string");
    }
    if (c == '\\') {
      unsigned cp;
      if (p->pos >= p->len) {
        free(buf);
        return fail(p, "unterminated escape");
      }
      c = p->text[p->pos++];
      switch (c) {
        case '"': case '\\': case '/': break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u':
          if (hex4(p, &cp)) {
            free(buf);
            return 1;
          }
          if (cp >= 0xD800 && cp < 0xDC00) {
            unsigned low;
            if (p->pos + 2 > p->len || p->text[p->pos] != '\\' || p->text[p->pos + 1] != 'u') {
              free(buf);
              return fail(p, "lone high surrogate");
            }
            p->pos += 2;
            if (hex4(p, &low) || low < 0xDC00 || low > 0xDFFF) {
              free(buf);
              return fail(p, "bad low surrogate");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          if (buf != NULL) put_utf8(buf, &n, cp);
          continue;
        default:
          free(buf);
          return fail(p, "unknown escape \\%c", c);
      }
    }
    if (buf != NULL) buf[n++] = c;
  }
  if (out != NULL) {
    buf[n] = '\0';
    *out = buf;
  }
  return 0;
}

static int parse_int64(parser *p, int64_t *out) {
  char *end;
  long long v;
  size_t start;
  skip_ws(p);
  start = p->pos;
  if (p->pos < p->len && p->text[p->pos] == '-') p->pos++;
  while (p->pos < p->len && p->text[p->pos] >= '0' && p->text[p->pos] <= '9') p->pos++;
  if (p->pos == start || (p->pos < p->len && strchr(".eE", p->text[p->pos]) != NULL)) {
    return fail(p, "expected an integer");
  }
  errno = 0;
  v = strtoll(p->text + start, &end, 10);
  if (errno == ERANGE || end != p->text + p->pos) return fail(p, "integer out of the int64 range");
  *out = (int64_t)v;
  return 0;
}

static int skip_value(parser *p, int depth) {
  char c = peek(p);
  if (depth > 64) return fail(p, "nested too deeply");
  if (c == '"') return parse_string(p, NULL);
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    p->pos++;
    if (peek(p) == close) {
      p->pos++;
      return 0;
    }
    for (;;) {
      if (c == '{' && (parse_string(p, NULL) || expect(p, ':'))) return 1;
      if (skip_value(p, depth + 1)) return 1;
      if (peek(p) == ',') {
        p->pos++;
        continue;
      }
      return expect(p, close);
    }
  }
  /* numbers and literals: the characters they can contain */
  if (c == '\0') return fail(p, "unexpected end");
  while (p->pos < p->len && strchr("+-.0123456789eEtruefalsn", p->text[p->pos]) != NULL) p->pos++;
  return 0;
}

static int parse_vector(parser *p, lkv_vector *v) {
  int have_symbol = 0, have_key = 0;
  if (expect(p, '{')) return 1;
  while (peek(p) != '}') {
    char *name = NULL;
    if (parse_string(p, &name) || expect(p, ':')) {
      free(name);
      return 1;
    }
    if (strcmp(name, "symbol") == 0 && !have_symbol) {
      have_symbol = !parse_string(p, &v->symbol);
    } else if (strcmp(name, "key") == 0 && !have_key) {
      have_key = !parse_int64(p, &v->key);
    } else {
      skip_value(p, 1);
    }
    free(name);
    if (p->failed) return 1;
    if (peek(p) == ',') p->pos++;
    else if (peek(p) != '}') return fail(p, "expected ',' or '}'");
  }
  p->pos++;
  if (!have_symbol || !have_key) return fail(p, "a vector lacks \"symbol\" or \"key\"");
  return 0;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *text = NULL;
  size_t cap = 0, n = 0, got;
  if (f == NULL) return NULL;
  do {
    if (n + 4096 > cap) {
      char *bigger = (char *)realloc(text, cap = (n + 4096) * 2);
      if (bigger == NULL) {
        free(text);
        fclose(f);
        return NULL;
      }
      text = bigger;
    }
    got = fread(text + n, 1, cap - n - 1, f);
    n += got;
  } while (got > 0);
  fclose(f);
  text[n] = '\0';
  *len = n;
  return text;
}

int lkv_read(const char *path, lkv_vector **out, char *err, size_t err_len) {
  parser p;
  lkv_vector *vectors = NULL;
  int count = 0, seen_list = 0;
  size_t len = 0;
  char *text = read_file(path, &len);
  *out = NULL;
  if (text == NULL) {
    if (err != NULL) snprintf(err, err_len, "cannot read %s", path);
    return -1;
  }
  memset(&p, 0, sizeof p);
  p.text = text;
  p.len = len;
  p.err = err;
  p.err_len = err_len;
  if (expect(&p, '{')) goto bad;
  while (peek(&p) != '}') {
    char *name = NULL;
    if (parse_string(&p, &name) || expect(&p, ':')) {
      free(name);
      goto bad;
    }
    if (strcmp(name, "lock_keys") == 0) {
      seen_list = 1;
      if (expect(&p, '[')) {
        free(name);
        goto bad;
      }
      while (peek(&p) != ']') {
        lkv_vector *bigger = (lkv_vector *)realloc(vectors, (size_t)(count + 1) * sizeof *vectors);
        if (bigger == NULL) {
          free(name);
          fail(&p, "out of memory");
          goto bad;
        }
        vectors = bigger;
        memset(&vectors[count], 0, sizeof vectors[count]);
        count++;
        if (parse_vector(&p, &vectors[count - 1])) {
          free(name);
          goto bad;
        }
        if (peek(&p) == ',') p.pos++;
        else if (peek(&p) != ']') {
          free(name);
          fail(&p, "expected ',' or ']'");
          goto bad;
        }
      }
      p.pos++;
    } else if (skip_value(&p, 1)) {
      free(name);
      goto bad;
    }
    free(name);
    if (peek(&p) == ',') p.pos++;
    else if (peek(&p) != '}') {
      fail(&p, "expected ',' or '}'");
      goto bad;
    }
  }
  if (!seen_list || count == 0) {
    fail(&p, "no \"lock_keys\" vectors in %s", path);
    goto bad;
  }
  free(text);
  *out = vectors;
  return count;
bad:
  free(text);
  lkv_free(vectors, count);
  return -1;
}

void lkv_free(lkv_vector *vectors, int count) {
  int i;
  if (vectors == NULL) return;
  for (i = 0; i < count; i++) free(vectors[i].symbol);
  free(vectors);
}
