package face

import (
	"cmp"
	"slices"
)

// ReadingOrder sorts faces as a page is read: in rows from top to bottom,
// each row from left to right. A face joins the row above when its centre
// lies within the height of one of that row's boxes, or the centre of one
// of them within its own height, so that a row of faces of different sizes
// and heights (a child among adults, near and far) stays one row. The order
// depends only on the boxes, not on the order faces came in: sorting twice
// changes nothing.
//
// It numbers the faces of a photo searched by a person (search.Request.Face
// counts in this order); the faces of ingested images keep the detector's
// order.
func ReadingOrder(faces []Face) {
	centre := func(f Face) (x, y float64) { return f.Box.X + f.Box.W/2, f.Box.Y + f.Box.H/2 }
	byX := func(a, b Face) int {
		ax, ay := centre(a)
		bx, by := centre(b)
		return cmp.Or(cmp.Compare(ax, bx), cmp.Compare(ay, by))
	}
	slices.SortStableFunc(faces, func(a, b Face) int {
		ax, ay := centre(a)
		bx, by := centre(b)
		return cmp.Or(cmp.Compare(ay, by), cmp.Compare(ax, bx))
	})
	// The row's lowest box bottom and lowest centre (faces come by
	// centre, so the last one's centre is the lowest).
	start, bottom, low := 0, 0.0, 0.0
	for i, f := range faces {
		_, y := centre(f)
		if i > start && y > bottom && f.Box.Y > low {
			slices.SortStableFunc(faces[start:i], byX)
			start = i
		}
		if i == start {
			bottom = f.Box.Y + f.Box.H
		} else {
			bottom = max(bottom, f.Box.Y+f.Box.H)
		}
		low = y
	}
	slices.SortStableFunc(faces[start:], byX)
}
