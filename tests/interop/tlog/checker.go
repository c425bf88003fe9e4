// checker: an independent verifier of hsmaudit's transparency-log proofs, built on Go's
// golang.org/x/mod/sumdb/note (signed notes, Ed25519 verifier keys) and sumdb/tlog (RFC 6962
// hashes, CheckRecord, CheckTree). It reads proof files in the format of docs/FORMAT.md
// section 10.4 and a note verifier key, and exits 0 only if every proof verifies.
//
// With -mutate it also changes one bit at a time in each proof's parts (note text, signature,
// proof hashes, leaf, old root) and requires every changed proof to be REJECTED.
//
// Build offline: GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= go build -o checker checker.go
package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type proof struct {
	kind          string
	origin        string
	oldSize       int64
	oldRoot       tlog.Hash
	size          int64
	root          tlog.Hash
	index         int64
	leaf          []byte
	hashes        []tlog.Hash
	oldCheckpoint []byte
	checkpoint    []byte
}

func parseHash(s string) (tlog.Hash, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != tlog.HashSize {
		return tlog.Hash{}, errors.New("bad hash " + s)
	}
	var h tlog.Hash
	copy(h[:], b)
	return h, nil
}

// parseProof reads the proof file format; it is written here from docs/FORMAT.md 10.4.
func parseProof(data []byte) (*proof, error) {
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return nil, errors.New("proof must end in a newline")
	}
	lines := strings.Split(string(data[:len(data)-1]), "\n")
	i := 0
	next := func() (string, bool) {
		if i >= len(lines) {
			return "", false
		}
		i++
		return lines[i-1], true
	}
	field := func(name string) (string, error) {
		l, ok := next()
		if !ok || !strings.HasPrefix(l, name+" ") {
			return "", fmt.Errorf("%q expected at line %d", name, i)
		}
		return l[len(name)+1:], nil
	}
	number := func(name string) (int64, error) {
		v, err := field(name)
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(v, 10, 64)
	}
	hash := func(name string) (tlog.Hash, error) {
		v, err := field(name)
		if err != nil {
			return tlog.Hash{}, err
		}
		return parseHash(v)
	}
	block := func(name string) ([]byte, error) {
		n, err := number(name)
		if err != nil || n < 1 || n > 128 {
			return nil, fmt.Errorf("bad %s block", name)
		}
		var b bytes.Buffer
		for k := int64(0); k < n; k++ {
			l, ok := next()
			if !ok {
				return nil, fmt.Errorf("%s block cut short", name)
			}
			b.WriteString(l + "\n")
		}
		return b.Bytes(), nil
	}
	peek := func(name string) bool { return i < len(lines) && strings.HasPrefix(lines[i], name+" ") }

	p := &proof{}
	var err error
	if l, _ := next(); l != "hsmaudit-proof v1" {
		return nil, errors.New("not an hsmaudit-proof v1 file")
	}
	if p.kind, err = field("kind"); err != nil {
		return nil, err
	}
	if p.kind != "inclusion" && p.kind != "consistency" {
		return nil, errors.New("unknown kind " + p.kind)
	}
	if p.origin, err = field("origin"); err != nil {
		return nil, err
	}
	if p.kind == "consistency" {
		if p.oldSize, err = number("old-size"); err != nil {
			return nil, err
		}
		if p.oldRoot, err = hash("old-root"); err != nil {
			return nil, err
		}
	}
	if p.size, err = number("size"); err != nil {
		return nil, err
	}
	if p.root, err = hash("root"); err != nil {
		return nil, err
	}
	if p.kind == "inclusion" {
		if p.index, err = number("index"); err != nil {
			return nil, err
		}
		leaf, err := field("leaf")
		if err != nil {
			return nil, err
		}
		p.leaf = []byte(leaf)
	}
	for peek("hash") {
		h, err := hash("hash")
		if err != nil {
			return nil, err
		}
		p.hashes = append(p.hashes, h)
	}
	if peek("old-checkpoint") {
		if p.oldCheckpoint, err = block("old-checkpoint"); err != nil {
			return nil, err
		}
	}
	if peek("checkpoint") {
		if p.checkpoint, err = block("checkpoint"); err != nil {
			return nil, err
		}
	}
	if l, ok := next(); !ok || l != "end" || i != len(lines) {
		return nil, errors.New(`"end" expected as the last line`)
	}
	return p, nil
}

// openHead opens a C2SP tlog-checkpoint signed note with the verifier and returns its tree.
func openHead(msg []byte, verifiers note.Verifiers, origin string) (tlog.Tree, error) {
	n, err := note.Open(msg, verifiers)
	if err != nil {
		return tlog.Tree{}, err
	}
	lines := strings.Split(n.Text, "\n") // origin, size, root, [extensions...], ""
	if len(lines) < 4 || lines[0] != origin || lines[len(lines)-1] != "" {
		return tlog.Tree{}, errors.New("not a checkpoint of " + origin)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return tlog.Tree{}, errors.New("bad checkpoint size")
	}
	root, err := parseHash(lines[2])
	if err != nil {
		return tlog.Tree{}, err
	}
	return tlog.Tree{N: size, Hash: root}, nil
}

// check verifies one parsed proof: each head signed by the key, the proof with tlog.
func check(p *proof, verifiers note.Verifiers, name string) error {
	if p.origin != name {
		return errors.New("proof of another log: " + p.origin)
	}
	if p.checkpoint == nil {
		return errors.New("no signed tree head")
	}
	head, err := openHead(p.checkpoint, verifiers, p.origin)
	if err != nil {
		return fmt.Errorf("checkpoint: %v", err)
	}
	if head.N != p.size || head.Hash != p.root {
		return errors.New("the checkpoint signs another tree head")
	}
	switch p.kind {
	case "inclusion":
		return tlog.CheckRecord(p.hashes, p.size, p.root, p.index, tlog.RecordHash(p.leaf))
	default:
		if p.oldCheckpoint == nil {
			return errors.New("no signed older tree head")
		}
		old, err := openHead(p.oldCheckpoint, verifiers, p.origin)
		if err != nil {
			return fmt.Errorf("old checkpoint: %v", err)
		}
		if old.N != p.oldSize || old.Hash != p.oldRoot {
			return errors.New("the old checkpoint signs another tree head")
		}
		return tlog.CheckTree(p.hashes, p.size, p.root, p.oldSize, p.oldRoot)
	}
}

func clone(p *proof) *proof {
	q := *p
	q.leaf = append([]byte(nil), p.leaf...)
	q.hashes = append([]tlog.Hash(nil), p.hashes...)
	q.oldCheckpoint = append([]byte(nil), p.oldCheckpoint...)
	q.checkpoint = append([]byte(nil), p.checkpoint...)
	return &q
}

// mutations: one-bit changes of every part of p; each must be rejected. Notes already mutated
// (seen) are skipped: their bytes are the same in every proof against that head.
func mutations(p *proof, seen map[string]bool) []*proof {
	var out []*proof
	notes := []func(*proof) *[]byte{
		func(q *proof) *[]byte { return &q.checkpoint },
		func(q *proof) *[]byte { return &q.oldCheckpoint },
	}
	for _, get := range notes {
		msg := *get(p)
		if msg == nil || seen[string(msg)] {
			continue
		}
		seen[string(msg)] = true
		split := bytes.LastIndex(msg, []byte("\n\n"))
		// Every byte of the note text (one bit each, cycling through the bit positions).
		for k := 0; k < split+1; k++ {
			q := clone(p)
			(*get(q))[k] ^= 1 << (k % 8)
			out = append(out, q)
		}
		// Every byte of the signature (key hash and Ed25519 signature), re-encoded.
		sigLine := string(msg[split+2 : len(msg)-1])
		sp := strings.LastIndexByte(sigLine, ' ')
		raw, err := base64.StdEncoding.DecodeString(sigLine[sp+1:])
		if err != nil {
			panic(err)
		}
		for k := range raw {
			bad := append([]byte(nil), raw...)
			bad[k] ^= 1 << (k % 8)
			q := clone(p)
			m := append([]byte(nil), msg[:split+2]...)
			m = append(m, sigLine[:sp+1]+base64.StdEncoding.EncodeToString(bad)+"\n"...)
			*get(q) = m
			out = append(out, q)
		}
	}
	for k := range p.hashes {
		q := clone(p)
		q.hashes[k][k%32] ^= 1 << (k % 8)
		out = append(out, q)
	}
	if len(p.hashes) > 0 {
		q := clone(p)
		q.hashes = q.hashes[:len(q.hashes)-1]
		out = append(out, q)
	}
	for k := range p.leaf {
		q := clone(p)
		q.leaf[k] ^= 1 << (k % 8)
		out = append(out, q)
	}
	if p.kind == "consistency" {
		q := clone(p)
		q.oldRoot[5] ^= 0x10
		out = append(out, q)
	} else {
		q := clone(p)
		q.index ^= 1
		out = append(out, q)
	}
	return out
}

func main() {
	mutate := flag.Bool("mutate", false, "also require every 1-bit change of each proof to be rejected")
	flag.Parse()
	if flag.NArg() < 2 {
		fmt.Fprintln(os.Stderr, "usage: checker [-mutate] VKEY_FILE PROOF...")
		os.Exit(2)
	}
	vkey, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "verifier key:", err)
		os.Exit(1)
	}
	verifiers := note.VerifierList(v)
	failed, mutated := 0, 0
	seen := map[string]bool{}
	for _, file := range flag.Args()[1:] {
		data, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		p, err := parseProof(data)
		if err == nil {
			err = check(p, verifiers, v.Name())
		}
		if err != nil {
			fmt.Printf("REJECTED %s: %v\n", file, err)
			failed++
			continue
		}
		if !*mutate {
			continue
		}
		for k, q := range mutations(p, seen) {
			mutated++
			if check(q, verifiers, v.Name()) == nil {
				fmt.Printf("ACCEPTED a changed proof: %s, change %d\n", file, k)
				failed++
			}
		}
	}
	fmt.Printf("checked %d proofs with Go's sumdb/note and sumdb/tlog: %d failures; %d one-bit changes, all must be rejected\n",
		flag.NArg()-1, failed, mutated)
	if failed > 0 {
		os.Exit(1)
	}
}
