package eventbus

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"
)

// CloudEvents 1.0 over AMQP 0-9-1, binary content mode, as docs/wire-format.md says and the
// Python SDK (eventbus/_envelope.py) does. Writers use the cloudEvents_ prefix; readers also
// accept cloudEvents:, ce- and ce_ headers and structured mode (application/cloudevents+json).

// Wire constants.
const (
	SpecVersion           = "1.0"
	HeaderPrefix          = "cloudEvents_"
	JSONContentType       = "application/json"
	StructuredContentType = "application/cloudevents+json"
)

var readPrefixes = []string{"cloudEvents_", "cloudEvents:", "ce-", "ce_"}
var traceHeaders = []string{"traceparent", "tracestate"}
var coreAttributes = map[string]bool{"specversion": true, "id": true, "source": true, "type": true, "time": true,
	"subject": true, "dataschema": true, "datacontenttype": true}

// Attributes are the context attributes of one event, as strings, exactly as on the wire.
// Extensions holds every other attribute (partitionkey, sequence, ...), by lower-case name.
type Attributes struct {
	ID              string
	Source          string
	Type            string
	Time            string
	Subject         string
	DataSchema      string
	DataContentType string
	SpecVersion     string
	Extensions      map[string]string
}

// FormatTime renders RFC 3339 in UTC with a Z, microseconds only when there are any: the form
// the Python SDK writes and every CloudEvents SDK parses.
func FormatTime(moment time.Time) string {
	moment = moment.UTC()
	if moment.Nanosecond()/1000 == 0 {
		return moment.Format("2006-01-02T15:04:05Z")
	}
	return moment.Format("2006-01-02T15:04:05.000000Z")
}

// validExtensionName is what CloudEvents allows: lower-case ASCII letters and digits.
func validExtensionName(name string) bool {
	if name == "" || len(name) > 20 || coreAttributes[name] {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// BuildHeaders returns the AMQP headers of binary mode; datacontenttype goes in content_type.
func BuildHeaders(attrs Attributes, trace map[string]string) amqp.Table {
	headers := amqp.Table{
		"cloudEvents_specversion": SpecVersion,
		"cloudEvents_id":          attrs.ID,
		"cloudEvents_source":      attrs.Source,
		"cloudEvents_type":        attrs.Type,
		"cloudEvents_time":        attrs.Time,
	}
	if attrs.Subject != "" {
		headers["cloudEvents_subject"] = attrs.Subject
	}
	if attrs.DataSchema != "" {
		headers["cloudEvents_dataschema"] = attrs.DataSchema
	}
	for name, value := range attrs.Extensions {
		headers[HeaderPrefix+name] = value
	}
	for _, name := range traceHeaders {
		if value, ok := trace[name]; ok {
			headers[name] = value
		}
	}
	return headers
}

func headerText(value interface{}, name string) string {
	switch v := value.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case time.Time:
		return FormatTime(v)
	case int64:
		if name == "time" { // the CloudEvents AMQP binding may send time as milliseconds
			return FormatTime(time.UnixMilli(v))
		}
		return fmt.Sprint(v)
	case int32:
		if name == "time" {
			return FormatTime(time.UnixMilli(int64(v)))
		}
		return fmt.Sprint(v)
	default:
		return fmt.Sprint(v)
	}
}

func mediaType(contentType string) string {
	if contentType == "" {
		return ""
	}
	parsed, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
	}
	return parsed
}

func isJSON(media string) bool {
	return media == JSONContentType || (strings.HasPrefix(media, "application/") && strings.HasSuffix(media, "+json"))
}

func attributesFrom(found map[string]string, contentType string) (Attributes, error) {
	var missing []string
	for _, name := range []string{"specversion", "id", "source", "type"} {
		if found[name] == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return Attributes{}, &EnvelopeError{"missing_attribute", "CloudEvents attribute(s) missing: " + strings.Join(missing, ", ")}
	}
	if found["specversion"] != SpecVersion {
		return Attributes{}, &EnvelopeError{"bad_specversion", fmt.Sprintf("unsupported CloudEvents specversion '%s'", found["specversion"])}
	}
	var extensions map[string]string
	for name, value := range found {
		if !coreAttributes[name] {
			if extensions == nil {
				extensions = map[string]string{}
			}
			extensions[name] = value
		}
	}
	return Attributes{
		ID: found["id"], Source: found["source"], Type: found["type"], Time: found["time"],
		Subject: found["subject"], DataSchema: found["dataschema"], DataContentType: contentType,
		SpecVersion: found["specversion"], Extensions: extensions,
	}, nil
}

// ParseEnvelope reads the CloudEvent out of one delivery: its attributes and the data bytes.
func ParseEnvelope(headers amqp.Table, contentType string, body []byte) (Attributes, []byte, error) {
	media := mediaType(contentType)
	if media == StructuredContentType {
		return parseStructured(body)
	}
	found := make(map[string]string, 8)
	if len(headers) > 0 {
		keys := make([]string, 0, len(headers))
		for key := range headers {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		for _, prefix := range readPrefixes { // the first prefix in this order wins, as in Python
			for _, key := range keys {
				if !strings.HasPrefix(key, prefix) || headers[key] == nil {
					continue
				}
				name := strings.ToLower(key[len(prefix):])
				if _, seen := found[name]; !seen {
					found[name] = headerText(headers[key], name)
				}
			}
		}
	}
	if media == "" {
		media = mediaType(found["datacontenttype"])
		if media == "" {
			media = JSONContentType
		}
	}
	if !isJSON(media) {
		return Attributes{}, nil, &EnvelopeError{"unsupported_content_type", fmt.Sprintf("content type '%s' is not JSON", contentType)}
	}
	attrs, err := attributesFrom(found, media)
	return attrs, body, err
}

func parseStructured(body []byte) (Attributes, []byte, error) {
	if !utf8.Valid(body) {
		return Attributes{}, nil, &EnvelopeError{"invalid_json", "structured CloudEvent is not valid UTF-8"}
	}
	var event map[string]json.RawMessage
	if err := json.Unmarshal(body, &event); err != nil {
		var anything interface{}
		if json.Unmarshal(body, &anything) == nil {
			return Attributes{}, nil, &EnvelopeError{"invalid_envelope", "structured CloudEvent is not a JSON object"}
		}
		return Attributes{}, nil, &EnvelopeError{"invalid_json", "structured CloudEvent is not valid JSON: " + err.Error()}
	}
	found := map[string]string{}
	for key, raw := range event {
		if key == "data" || key == "data_base64" || string(raw) == "null" {
			continue
		}
		var text string
		if json.Unmarshal(raw, &text) != nil {
			text = string(raw)
		}
		found[key] = text
	}
	media := mediaType(found["datacontenttype"])
	if media == "" {
		media = JSONContentType
	}
	if !isJSON(media) {
		return Attributes{}, nil, &EnvelopeError{"unsupported_content_type", fmt.Sprintf("datacontenttype '%s' is not JSON", media)}
	}
	var data []byte
	if encoded, ok := event["data_base64"]; ok {
		var text string
		if err := json.Unmarshal(encoded, &text); err != nil {
			return Attributes{}, nil, &EnvelopeError{"invalid_envelope", "data_base64 is not a string"}
		}
		decoded, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return Attributes{}, nil, &EnvelopeError{"invalid_envelope", "data_base64 is not base64"}
		}
		data = decoded
	} else if raw, ok := event["data"]; ok {
		data = raw
	} else {
		return Attributes{}, nil, &EnvelopeError{"invalid_envelope", "structured CloudEvent has no data"}
	}
	attrs, err := attributesFrom(found, media)
	return attrs, data, err
}
