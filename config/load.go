package config

import (
	"encoding"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load builds the configuration from defaults, the YAML file named by
// -config or KEFU_CONFIG (if any), KEFU_* variables from getenv and the
// flags in args, then validates it. Usage errors are written to usage.
func Load(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	cfg := Default()
	fields := leaves(reflect.ValueOf(&cfg).Elem(), "")

	fs := flag.NewFlagSet("kefu serve", flag.ContinueOnError)
	fs.SetOutput(usage)
	configFile := fs.String("config", getenv("KEFU_CONFIG"), "YAML configuration file (env KEFU_CONFIG)")
	set := map[string]string{}
	for _, f := range fields {
		fs.Func(f.path, f.help(), func(v string) error { set[f.path] = v; return nil })
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	if *configFile != "" {
		data, err := os.ReadFile(*configFile)
		if err != nil {
			return cfg, fmt.Errorf("config file: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config file %s: %w", *configFile, err)
		}
	}
	var errs []error
	for _, f := range fields {
		if v := getenv(f.env()); v != "" {
			if err := f.set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f.env(), err))
			}
		}
	}
	// KEFU_ADMIN_PASSWORD and KEFU_MONGO_URI are the short names operators
	// expect; the full names win when both are set.
	if v := getenv("KEFU_ADMIN_PASSWORD"); v != "" && getenv("KEFU_BOOTSTRAP_ADMIN_PASSWORD") == "" {
		cfg.Bootstrap.AdminPassword = v
	}
	if v := getenv("KEFU_MONGO_URI"); v != "" && getenv("KEFU_STORE_MONGO_URI") == "" {
		cfg.Store.MongoURI = v
	}
	for _, f := range fields {
		if v, ok := set[f.path]; ok {
			if err := f.set(v); err != nil {
				errs = append(errs, fmt.Errorf("-%s: %w", f.path, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// leaf is one settable field, named by its dotted yaml path.
type leaf struct {
	path string
	v    reflect.Value
}

func leaves(v reflect.Value, prefix string) []leaf {
	var out []leaf
	t := v.Type()
	for i := range t.NumField() {
		name := prefix + strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			out = append(out, leaves(fv, name+".")...)
			continue
		}
		out = append(out, leaf{path: name, v: fv})
	}
	return out
}

func (l leaf) env() string {
	return "KEFU_" + strings.ToUpper(strings.ReplaceAll(l.path, ".", "_"))
}

func (l leaf) help() string {
	return fmt.Sprintf("%s (env %s, default %v)", l.path, l.env(), l.v.Interface())
}

// set parses s into the field: comma-separated for lists.
func (l leaf) set(s string) error {
	if u, ok := l.v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(s))
	}
	switch l.v.Kind() {
	case reflect.String:
		l.v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		l.v.SetBool(b)
	case reflect.Int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		l.v.SetInt(int64(n))
	case reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		l.v.SetFloat(f)
	case reflect.Slice:
		var items []string
		for _, item := range strings.Split(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		l.v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("unsupported setting type %s", l.v.Kind())
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
