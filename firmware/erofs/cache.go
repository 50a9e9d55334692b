package erofs

import (
	"container/list"
	"sync"
)

// extentKey names a decompressed extent: the inode and the extent's first byte in the file.
type extentKey struct {
	nid uint64
	la  int64
}

type extentEntry struct {
	key  extentKey
	data []byte
}

// extentCache is an LRU of decompressed extents bounded by the total bytes it holds. Reading a
// file sequentially decompresses each pcluster once; reads that jump around keep at most budget
// bytes alive.
type extentCache struct {
	mu     sync.Mutex
	budget int64
	used   int64
	order  *list.List // front: most recently used
	byKey  map[extentKey]*list.Element
}

func newExtentCache(budget int64) *extentCache {
	return &extentCache{budget: budget, order: list.New(), byKey: make(map[extentKey]*list.Element)}
}

func (c *extentCache) get(k extentKey) ([]byte, bool) {
	if c == nil || c.budget <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*extentEntry).data, true
}

func (c *extentCache) put(k extentKey, data []byte) {
	if c == nil || int64(len(data)) > c.budget {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[k]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.byKey[k] = c.order.PushFront(&extentEntry{key: k, data: data})
	c.used += int64(len(data))
	for c.used > c.budget {
		last := c.order.Back()
		ent := last.Value.(*extentEntry)
		c.order.Remove(last)
		delete(c.byKey, ent.key)
		c.used -= int64(len(ent.data))
	}
}
