//go:build !linux

package load

import (
	"context"
	"errors"
)

const epollEngineAvailable = false

func epollLoad(context.Context, Options, string, string) (Result, error) {
	return Result{}, errors.New("bench: load: the epoll engine needs Linux")
}
