package httpapi

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
)

// writeList answers 200 with a listing page — {"data":[…],"count":…,"limit":…,
// "next_cursor":…}, the JSON of GPUList and HostList — encoding one item at a time, so that
// a page is never held whole as DTOs and as JSON besides (with c.JSON, 16 clients listing
// 100k GPUs in pages of up to 10,000 took the API's peak memory from 203 to 246 MB).
func writeList[T any](c *gin.Context, items []T, dto func(T) any, limit int, next string) {
	c.Header("Content-Type", "application/json; charset=utf-8")
	c.Status(http.StatusOK)
	w := bufio.NewWriterSize(c.Writer, 32<<10)
	_, _ = w.WriteString(`{"data":[`)
	for i, it := range items {
		raw, err := json.Marshal(dto(it))
		if err != nil {
			_ = c.Error(err) // cannot happen for these DTOs; the answer is cut short
			return
		}
		if i > 0 {
			_ = w.WriteByte(',')
		}
		_, _ = w.Write(raw)
	}
	_, _ = w.WriteString(`],"count":` + strconv.Itoa(len(items)) + `,"limit":` + strconv.Itoa(limit))
	if next != "" {
		raw, _ := json.Marshal(next)
		_, _ = w.WriteString(`,"next_cursor":`)
		_, _ = w.Write(raw)
	}
	_, _ = w.WriteString("}")
	_ = w.Flush()
}
