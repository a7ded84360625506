//go:build !linux

package bench

import (
	"context"
	"errors"
)

const epollEngineAvailable = false

func epollLoad(context.Context, LoadOptions, string, string) (LoadResult, error) {
	return LoadResult{}, errors.New("bench: load: the epoll engine needs Linux")
}
