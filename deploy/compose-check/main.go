// Command compose-check loads a Compose file the way Docker Compose v2 and later load it, through
// compose-go (the library `docker compose` itself is built on): YAML parsing, the Compose
// Specification's JSON schema, ${VAR} interpolation (including `${VAR:?message}` for required values),
// normalization, and the consistency checks (unknown services in depends_on, undeclared networks or
// volumes, ...). It needs no Docker engine.
//
// On success it prints a summary (services, images, published ports, health checks), or with -json the
// resolved model, as `docker compose config --format json` would; on an invalid file it prints
// compose-go's message on stderr and exits 1.
//
// The ${...} values come only from the file given with -env-file: the process environment and the
// project's real .env are never read, so a check gives the same answer on every machine.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

const library = "github.com/compose-spec/compose-go/v2"

func main() {
	file := flag.String("f", "docker-compose.yml", "the Compose file to load")
	envFile := flag.String("env-file", "", "env file with the values for ${...} (required)")
	asJSON := flag.Bool("json", false, "print the resolved model as JSON instead of a summary")
	flag.Parse()
	if err := run(*file, *envFile, *asJSON, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "compose-check: %s is invalid: %v\n", *file, err)
		os.Exit(1)
	}
}

func run(file, envFile string, asJSON bool, out io.Writer) error {
	if envFile == "" {
		// without one compose-go would fall back to the .env next to the file
		return fmt.Errorf("-env-file is required")
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	options, err := cli.NewProjectOptions(
		[]string{abs},
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	if asJSON {
		model, err := project.MarshalJSON()
		if err != nil {
			return err
		}
		_, err = out.Write(append(model, '\n'))
		return err
	}
	summarize(out, file, project)
	return nil
}

func libraryVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == library {
				return dep.Version
			}
		}
	}
	return "(unknown version)"
}

func summarize(out io.Writer, file string, project *types.Project) {
	fmt.Fprintf(out, "compose-check: %s is valid (compose-go %s: Compose Specification schema, "+
		"interpolation, consistency)\n", file, libraryVersion())
	names := project.ServiceNames()
	sort.Strings(names)
	fmt.Fprintf(out, "project %s, %d services:\n", project.Name, len(names))
	for _, name := range names {
		service := project.Services[name]
		image := service.Image
		if service.Build != nil {
			image = fmt.Sprintf("%s (built from %s)", image, service.Build.Dockerfile)
		}
		var ports []string
		for _, port := range service.Ports {
			ports = append(ports, fmt.Sprintf("%s:%s->%d/%s", port.HostIP, port.Published, port.Target, port.Protocol))
		}
		health := "none"
		if service.HealthCheck != nil && !service.HealthCheck.Disable {
			health = strings.Join(service.HealthCheck.Test, " ")
		}
		var deps []string
		for dep, config := range service.DependsOn {
			deps = append(deps, dep+" ("+config.Condition+")")
		}
		sort.Strings(deps)
		fmt.Fprintf(out, "  %-18s %s\n", name, image)
		fmt.Fprintf(out, "  %-18s ports: %s\n", "", orNone(ports))
		fmt.Fprintf(out, "  %-18s health: %s\n", "", health)
		fmt.Fprintf(out, "  %-18s depends on: %s\n", "", orNone(deps))
	}
}

func orNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}
