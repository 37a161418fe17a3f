package protofield

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestParseRoundTrip(t *testing.T) {
	msg := append(Bytes(1, []byte("name")), Varint(2, 300)...)
	msg = protowire.AppendFixed32(protowire.AppendTag(msg, 3, protowire.Fixed32Type), 7)
	fs, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 3 || string(fs[0].Val) != "name" || fs[1].V != 300 || fs[2].V != 7 || fs[1].Num != 2 || fs[2].Typ != protowire.Fixed32Type {
		t.Fatalf("Parse = %+v", fs)
	}
	var back []byte
	for _, f := range fs {
		back = append(back, f.Raw...)
	}
	if !bytes.Equal(back, msg) {
		t.Error("the fields' raw bytes do not make the message again")
	}
	if _, err := Parse(msg[:len(msg)-2]); err == nil {
		t.Error("a truncated message parsed")
	}
}
