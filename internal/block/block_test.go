package block

import (
	"reflect"
	"runtime"
	"testing"

	"github.com/ladder-ml/ladder/tensor"
)

func TestCloneDataCopiesEveryElementType(t *testing.T) {
	datas := []any{
		[]float32{1.5, -2}, []float64{3}, []int64{4, 5}, []int32{6}, []bool{true, false},
		[]int8{-7}, []uint8{8}, []int16{-9}, []uint16{10}, []uint32{11}, []uint64{12},
		[]tensor.F16{tensor.F16(0x3c00)}, []tensor.BF16{tensor.BF16(0x3f80)}, []string{"a", "bc"},
		make([]float32, 100), // too large for the room
	}
	for _, n := range []int{1, 2, 3} {
		for _, data := range datas {
			// Given n tensors of the same data, copied into one block,
			ts, room := New(n)
			for i := range ts {
				ts[i] = tensor.Tensor{Name: "x", Shape: Shape(&room, []int64{1, int64(reflect.ValueOf(data).Len())}), Data: CloneData(&room, data)}
			}
			runtime.GC()
			for i := range ts {
				got := reflect.ValueOf(ts[i].Data)
				// then each copy equals the data, with no room to append
				// into the next,
				if !reflect.DeepEqual(ts[i].Data, data) || got.Cap() != got.Len() {
					t.Fatalf("%d tensors, %T: copy %d is %v (cap %d), want %v", n, data, i, ts[i].Data, got.Cap(), data)
				}
				// and changing it changes neither the data nor the others.
				if got.Len() > 0 {
					orig := reflect.ValueOf(data).Index(0).Interface()
					got.Index(0).Set(reflect.Zero(got.Type().Elem()))
					if reflect.ValueOf(data).Index(0).Interface() != orig {
						t.Fatalf("%T: the copy shares the data", data)
					}
					for j := range ts {
						if j != i && reflect.ValueOf(ts[j].Data).Index(0).Interface() != orig {
							t.Fatalf("%T: copy %d shares copy %d's room", data, j, i)
						}
					}
					got.Index(0).Set(reflect.ValueOf(orig))
				}
			}
		}
	}
}

func TestATypicalAnswerIsOneAllocation(t *testing.T) {
	src := []tensor.Tensor{tensor.New("label", []int64{1}, []int64{1}), tensor.New("probability", []int64{1, 2}, []float32{0.2, 0.8})}
	n := testing.AllocsPerRun(100, func() {
		ts, room := New(len(src))
		for i, s := range src {
			ts[i] = tensor.Tensor{Name: s.Name, Shape: Shape(&room, s.Shape), Data: CloneData(&room, s.Data)}
		}
	})
	if n != 1 {
		t.Fatalf("copying a label and two probabilities allocates %v times, want 1", n)
	}
}
