package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"
)

// dialect is the SQL database a store speaks. The store's queries are
// written once, with ? placeholders, in the SQL both databases accept; the
// few places where they differ ask the dialect.
type dialect int

const (
	sqliteDialect   dialect = iota // one SQLite file, the embedded default
	postgresDialect                // a PostgreSQL database shared by many instances
)

// String names the dialect as Dialect reports it.
func (d dialect) String() string {
	if d == postgresDialect {
		return "postgres"
	}
	return "sqlite"
}

// Dialect names the database behind the store: "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.d.String() }

// rebound caches the PostgreSQL form of each query text.
var rebound sync.Map // string → string

// rebind turns the ? placeholders of query into $1, $2… for PostgreSQL,
// leaving question marks inside quoted strings, quoted identifiers and
// comments alone. SQLite takes the query as it is.
func (d dialect) rebind(query string) string {
	if d != postgresDialect || !strings.Contains(query, "?") {
		return query
	}
	if q, ok := rebound.Load(query); ok {
		return q.(string)
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(query) && query[j] != c {
				j++
			}
			b.WriteString(query[i:min(j+1, len(query))])
			i = j
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				j = len(query) - i
			}
			b.WriteString(query[i : i+j])
			i += j - 1
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	q := b.String()
	rebound.Store(query, q)
	return q
}

// args adapts query arguments to the dialect: PostgreSQL keeps booleans
// in integer columns (0 or 1, as SQLite does), and pgx does not encode a
// Go bool into an integer parameter.
func (d dialect) args(args []any) []any {
	if d != postgresDialect {
		return args
	}
	out := args
	for i, a := range args {
		if b, ok := a.(bool); ok {
			if &out[0] == &args[0] {
				out = append([]any(nil), args...) // the caller's slice stays as it was
			}
			out[i] = int64(0)
			if b {
				out[i] = int64(1)
			}
		}
	}
	return out
}

// inInt64s is the condition "column is one of ids", with its one argument:
// a JSON array read by json_each on SQLite, a bigint[] on PostgreSQL.
func (d dialect) inInt64s(column string, ids []int64) (string, any) {
	if d == postgresDialect {
		if ids == nil {
			ids = []int64{}
		}
		return column + " = ANY(?::bigint[])", ids
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteByte(']')
	return column + " IN (SELECT value FROM json_each(?))", b.String()
}

// jsonInt64s is a subquery of one column, value, holding the integers of
// the JSON array in the text column (or expression) expr.
func (d dialect) jsonInt64s(expr string) string {
	if d == postgresDialect {
		return "(SELECT value::bigint AS value FROM json_array_elements_text(" + expr + "::json))"
	}
	return "(SELECT value FROM json_each(" + expr + "))"
}

// insertOrder is the column that orders the rows of confirmations and
// rejections as they were inserted, prefixed (e.g. "c."): SQLite's rowid;
// on PostgreSQL, whose rows have none, an identity column seq.
func (d dialect) insertOrder(prefix string) string {
	if d == postgresDialect {
		return prefix + "seq"
	}
	return prefix + "rowid"
}

// conn is a database/sql pool whose queries are written with ?
// placeholders for the store's dialect.
type conn struct {
	*sql.DB
	d dialect
}

// ExecContext runs query, rebound for the dialect.
func (c conn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.DB.ExecContext(ctx, c.d.rebind(query), c.d.args(args)...)
}

// QueryContext runs query, rebound for the dialect.
func (c conn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return c.DB.QueryContext(ctx, c.d.rebind(query), c.d.args(args)...)
}

// QueryRowContext runs query, rebound for the dialect.
func (c conn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return c.DB.QueryRowContext(ctx, c.d.rebind(query), c.d.args(args)...)
}

// BeginTx starts a transaction whose queries are rebound for the dialect.
func (c conn) BeginTx(ctx context.Context, opts *sql.TxOptions) (*txConn, error) {
	tx, err := c.DB.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &txConn{Tx: tx, d: c.d}, nil
}

// txConn is a transaction whose queries are written with ? placeholders.
type txConn struct {
	*sql.Tx
	d dialect
}

// ExecContext runs query, rebound for the dialect.
func (t *txConn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(ctx, t.d.rebind(query), t.d.args(args)...)
}

// QueryContext runs query, rebound for the dialect.
func (t *txConn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(ctx, t.d.rebind(query), t.d.args(args)...)
}

// QueryRowContext runs query, rebound for the dialect.
func (t *txConn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, t.d.rebind(query), t.d.args(args)...)
}

// PrepareContext prepares query, rebound for the dialect. The statement's
// arguments are not adapted: give integers, not booleans.
func (t *txConn) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return t.Tx.PrepareContext(ctx, t.d.rebind(query))
}
