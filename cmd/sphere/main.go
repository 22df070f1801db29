// Command sphere is the sphere daemon and its command line.
package main

import (
	"os"

	"github.com/sphere-sandbox/sphere/cmd"
)

func main() {
	os.Exit(cmd.Main(os.Args))
}
