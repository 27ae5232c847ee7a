{{/*
Shared definitions of the chart. Names in the cluster are the component names themselves (`orders`,
`postgres`, ...): the services find each other by them, so one release per namespace.
*/}}

{{/* The data stores the chart can deploy (infra.enabled) or point at (external.*). */}}
{{- define "bazaar.stores" -}}
{{- list "postgres" "mongo" "redis" "rabbitmq" "mail" | toJson -}}
{{- end -}}

{{/* Ports of a node of the graph, by name: every Bazaar component listens on 8080. */}}
{{- define "bazaar.storePorts" -}}
{{- dict "postgres" (list 5432) "mongo" (list 27017) "redis" (list 6379) "rabbitmq" (list 5672) "mail" (list 1025 1080) | toJson -}}
{{- end -}}

{{/* The Secret the chart generates, or the one it is given. */}}
{{- define "bazaar.secretName" -}}
{{- .Values.secrets.existingSecret | default "bazaar" -}}
{{- end -}}

{{- define "bazaar.adminSecretName" -}}
{{- .Values.admin.existingSecret | default "bazaar-admin" -}}
{{- end -}}

{{/* Whether the admin bootstrap runs: credentials given in values or through an existing Secret. */}}
{{- define "bazaar.hasAdmin" -}}
{{- if .Values.admin.existingSecret -}}
true
{{- else if and .Values.admin.email .Values.admin.password -}}
true
{{- else if or .Values.admin.email .Values.admin.password -}}
{{- fail "admin.email and admin.password are set together or not at all" -}}
{{- end -}}
{{- end -}}

{{- define "bazaar.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: bazaar
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{ include "bazaar.selectorLabels" . }}
{{- end -}}

{{/* Selects the pods of one node of the graph (a component, a store, a job or the test). */}}
{{- define "bazaar.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* `<registry>/<repository>@<digest>` when a digest is known, else `:<tag>`. */}}
{{- define "bazaar.image" -}}
{{- $registry := .image.registry | default .root.Values.image.registry -}}
{{- $repository := required (printf "%s: image.repository is required" .name) .image.repository -}}
{{- $ref := $repository -}}
{{- if $registry -}}
{{- $ref = printf "%s/%s" (trimSuffix "/" $registry) $repository -}}
{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $ref .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref (.image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/*
Deep merge of two maps, `over` winning; unlike sprig's merge a `false` or `0` in `over` wins too.
Returns JSON.
*/}}
{{- define "bazaar.merge" -}}
{{- $out := deepCopy .base -}}
{{- range $key, $value := .over -}}
{{- $current := get $out $key -}}
{{- if and (kindIs "map" $value) (kindIs "map" $current) -}}
{{- $_ := set $out $key (include "bazaar.merge" (dict "base" $current "over" $value) | fromJson) -}}
{{- else -}}
{{- $_ := set $out $key $value -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* The enabled components, each merged over componentDefaults. Returns JSON. */}}
{{- define "bazaar.components" -}}
{{- $out := dict -}}
{{- range $name, $component := .Values.components -}}
{{- $merged := include "bazaar.merge" (dict "base" $.Values.componentDefaults "over" $component) | fromJson -}}
{{- if $merged.enabled -}}
{{- $_ := set $out $name $merged -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
The graph of who talks to whom, from the `talksTo` lists of values: the NetworkPolicies and the
connection env both come from it. Nodes: the components, the migration and admin Jobs, the test
Pod and (infra.enabled) the stores. Returns JSON {name: {kind, talksTo, ports, public, emits}}
(emits: sends telemetry, so it may reach the observability endpoints).
*/}}
{{- define "bazaar.graph" -}}
{{- $nodes := dict -}}
{{- $components := include "bazaar.components" . | fromJson -}}
{{- $storePorts := include "bazaar.storePorts" . | fromJson -}}
{{- range $name, $c := $components -}}
{{- $_ := set $nodes $name (dict "kind" "component" "talksTo" $c.talksTo "ports" (list 8080) "public" $c.public "emits" (eq $c.runtime "node")) -}}
{{- if and $c.migrations $.Values.jobs.migrate.enabled -}}
{{- $_ := set $nodes (printf "%s-migrate" $name) (dict "kind" "job" "talksTo" $.Values.jobs.migrate.talksTo "ports" (list) "public" false "emits" true) -}}
{{- end -}}
{{- end -}}
{{- if and (include "bazaar.hasAdmin" .) (hasKey $components "users") -}}
{{- $_ := set $nodes "users-bootstrap-admin" (dict "kind" "job" "talksTo" .Values.jobs.bootstrapAdmin.talksTo "ports" (list) "public" false "emits" true) -}}
{{- end -}}
{{- if .Values.tests.enabled -}}
{{- $_ := set $nodes "smoke-test" (dict "kind" "test" "talksTo" .Values.tests.talksTo "ports" (list) "public" false "emits" false) -}}
{{- end -}}
{{- if .Values.infra.enabled -}}
{{- range $store := include "bazaar.stores" . | fromJsonArray -}}
{{- $_ := set $nodes $store (dict "kind" "store" "talksTo" (index $.Values.infra $store).talksTo "ports" (get $storePorts $store) "public" false "emits" false) -}}
{{- end -}}
{{- end -}}
{{- toJson $nodes -}}
{{- end -}}

{{/* A store's password as an env var's valueFrom: the chart's Secret, or external.<store>.passwordSecret. */}}
{{- define "bazaar.storePasswordRef" -}}
{{- if .root.Values.infra.enabled -}}
secretKeyRef:
  name: {{ include "bazaar.secretName" .root }}
  key: {{ .store }}-password
{{- else -}}
{{- $ref := (index .root.Values.external .store).passwordSecret -}}
secretKeyRef:
  name: {{ required (printf "external.%s.passwordSecret.name is required with infra.enabled=false" .store) $ref.name }}
  key: {{ $ref.key }}
{{- end -}}
{{- end -}}

{{/*
Plain (non-secret) environment of a component: what goes into its ConfigMap. The connection
URLs follow its talksTo list; URLs that carry a password are in "bazaar.secretEnv".
*/}}
{{- define "bazaar.plainEnv" -}}
{{- $c := .component -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $env := dict -}}
{{- if eq $c.runtime "node" -}}
{{- $_ := set $env "NODE_ENV" "production" -}}
{{- $_ := set $env "HOST" "0.0.0.0" -}}
{{- $_ := set $env "PORT" "8080" -}}
{{- $_ := set $env "LOG_LEVEL" $v.logLevel -}}
{{- $_ := set $env "HOME" "/tmp" -}}
{{- $_ := set $env "SHUTDOWN_TIMEOUT_MS" (printf "%d" (mul (int $c.drain.shutdownSeconds) 1000)) -}}
{{- if eq $.name "gateway" -}}
{{- /* dns.resolve4 applies no search list: the gateway asks for <service>.<namespace>.svc.<domain>. */ -}}
{{- $_ := set $env "GATEWAY_DNS_DOMAIN" (printf "%s.svc.%s" $root.Release.Namespace $v.clusterDomain) -}}
{{- end -}}
{{- with $v.observability.otlp.url -}}
{{- $_ := set $env "OTEL_EXPORTER_OTLP_ENDPOINT" . -}}
{{- end -}}
{{- with $v.observability.elasticsearch.url -}}
{{- $_ := set $env "LOG_ELASTICSEARCH_URL" . -}}
{{- end -}}
{{- end -}}
{{- range $target := $c.talksTo -}}
{{- if eq $target "users" -}}
{{- $_ := set $env "JWKS_URL" "http://users:8080/.well-known/jwks.json" -}}
{{- $_ := set $env "USERS_URL" "http://users:8080" -}}
{{- if eq $.name "gateway" -}}
{{- $_ := set $env "GATEWAY_JWKS_URL" "http://users:8080/.well-known/jwks.json" -}}
{{- end -}}
{{- else if eq $target "psp-sandbox" -}}
{{- $_ := set $env "PSP_URL" "http://psp-sandbox:8080" -}}
{{- else if and (eq $target "mongo") (not (hasKey $c.secretEnv "MONGO_URL")) -}}
{{- if $v.infra.enabled -}}
{{- $_ := set $env "MONGO_URL" (printf "mongodb://mongo:27017/%s" $c.database) -}}
{{- else if not $v.external.mongo.user -}}
{{- $m := $v.external.mongo -}}
{{- $_ := set $env "MONGO_URL" (printf "mongodb://%s/%s%s" (required "external.mongo.hosts is required with infra.enabled=false" $m.hosts) $c.database (ternary (printf "?%s" $m.params) "" (ne $m.params ""))) -}}
{{- end -}}
{{- else if eq $target "mail" -}}
{{- if $v.infra.enabled -}}
{{- $_ := set $env "SMTP_URL" "smtp://mail:1025" -}}
{{- $_ := set $env "MAIL_RECONCILE_URL" "http://mail:1080" -}}
{{- else -}}
{{- $m := $v.external.mail -}}
{{- if not (or $m.user (hasKey $c.secretEnv "SMTP_URL")) -}}
{{- $_ := set $env "SMTP_URL" (printf "%s://%s:%d" (ternary "smtps" "smtp" $m.tls) (required "external.mail.host is required with infra.enabled=false" $m.host) (int $m.port)) -}}
{{- end -}}
{{- with $m.reconcileUrl -}}
{{- $_ := set $env "MAIL_RECONCILE_URL" . -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $key, $value := $c.env -}}
{{- $_ := set $env $key (toString $value) -}}
{{- end -}}
{{- toJson $env -}}
{{- end -}}

{{/*
The env entries that come from Secrets, in dependency order: the pod's name, the stores'
passwords, secretEnv, then the URLs built from them with `$(VAR)` expansion (which only refers to
variables defined earlier in the list), then composedEnv. A secretEnv entry for DATABASE_URL,
MONGO_URL, REDIS_URL, RABBITMQ_URL or SMTP_URL (an operator's connection Secret) replaces the URL
the chart would build.
*/}}
{{- define "bazaar.secretEnv" -}}
{{- $c := .component -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $passwords := list -}}
{{- $urls := list -}}
{{- range $target := $c.talksTo -}}
{{- if and (eq $target "postgres") (not (hasKey $c.secretEnv "DATABASE_URL")) -}}
{{- $passwords = append $passwords (dict "name" "BAZAAR_POSTGRES_PASSWORD" "store" "postgres") -}}
{{- if $v.infra.enabled -}}
{{- $urls = append $urls (dict "name" "DATABASE_URL" "value" (printf "postgres://postgres:$(BAZAAR_POSTGRES_PASSWORD)@postgres:5432/%s" $c.database)) -}}
{{- else -}}
{{- $p := $v.external.postgres -}}
{{- $urls = append $urls (dict "name" "DATABASE_URL" "value" (printf "postgres://%s:$(BAZAAR_POSTGRES_PASSWORD)@%s:%d/%s%s" $p.user (required "external.postgres.host is required with infra.enabled=false" $p.host) (int $p.port) $c.database (ternary (printf "?%s" $p.params) "" (ne $p.params "")))) -}}
{{- end -}}
{{- else if and (eq $target "redis") (not (hasKey $c.secretEnv "REDIS_URL")) -}}
{{- $passwords = append $passwords (dict "name" "BAZAAR_REDIS_PASSWORD" "store" "redis") -}}
{{- if $v.infra.enabled -}}
{{- $urls = append $urls (dict "name" "REDIS_URL" "value" "redis://:$(BAZAAR_REDIS_PASSWORD)@redis:6379") -}}
{{- else -}}
{{- $r := $v.external.redis -}}
{{- $urls = append $urls (dict "name" "REDIS_URL" "value" (printf "%s://%s:$(BAZAAR_REDIS_PASSWORD)@%s:%d" (ternary "rediss" "redis" $r.tls) $r.user (required "external.redis.host is required with infra.enabled=false" $r.host) (int $r.port))) -}}
{{- end -}}
{{- else if and (eq $target "rabbitmq") (not (hasKey $c.secretEnv "RABBITMQ_URL")) -}}
{{- $passwords = append $passwords (dict "name" "BAZAAR_RABBITMQ_PASSWORD" "store" "rabbitmq") -}}
{{- if $v.infra.enabled -}}
{{- $urls = append $urls (dict "name" "RABBITMQ_URL" "value" "amqp://bazaar:$(BAZAAR_RABBITMQ_PASSWORD)@rabbitmq:5672") -}}
{{- else -}}
{{- $q := $v.external.rabbitmq -}}
{{- $urls = append $urls (dict "name" "RABBITMQ_URL" "value" (printf "%s://%s:$(BAZAAR_RABBITMQ_PASSWORD)@%s:%d%s" (ternary "amqps" "amqp" $q.tls) $q.user (required "external.rabbitmq.host is required with infra.enabled=false" $q.host) (int $q.port) (ternary (printf "/%s" $q.vhost) "" (ne $q.vhost "")))) -}}
{{- end -}}
{{- else if and (eq $target "mongo") (not $v.infra.enabled) $v.external.mongo.user (not (hasKey $c.secretEnv "MONGO_URL")) -}}
{{- $m := $v.external.mongo -}}
{{- $passwords = append $passwords (dict "name" "BAZAAR_MONGO_PASSWORD" "store" "mongo") -}}
{{- $urls = append $urls (dict "name" "MONGO_URL" "value" (printf "mongodb://%s:$(BAZAAR_MONGO_PASSWORD)@%s/%s%s" $m.user (required "external.mongo.hosts is required with infra.enabled=false" $m.hosts) $c.database (ternary (printf "?%s" $m.params) "" (ne $m.params "")))) -}}
{{- else if and (eq $target "mail") (not $v.infra.enabled) $v.external.mail.user (not (hasKey $c.secretEnv "SMTP_URL")) -}}
{{- $m := $v.external.mail -}}
{{- $passwords = append $passwords (dict "name" "BAZAAR_MAIL_PASSWORD" "store" "mail") -}}
{{- $urls = append $urls (dict "name" "SMTP_URL" "value" (printf "%s://%s:$(BAZAAR_MAIL_PASSWORD)@%s:%d" (ternary "smtps" "smtp" $m.tls) $m.user (required "external.mail.host is required with infra.enabled=false" $m.host) (int $m.port))) -}}
{{- end -}}
{{- end -}}
- name: SERVICE_INSTANCE_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- range $passwords }}
- name: {{ .name }}
  valueFrom:
    {{- include "bazaar.storePasswordRef" (dict "root" $root "store" .store) | nindent 4 }}
{{- end }}
{{- range $name, $ref := $c.secretEnv }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name | default (include "bazaar.secretName" $root) }}
      key: {{ $ref.key }}
{{- end }}
{{- range $urls }}
- name: {{ .name }}
  value: {{ .value | quote }}
{{- end }}
{{- range $name, $value := $c.composedEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* The pod-level security context of every pod: Pod Security "restricted". */}}
{{- define "bazaar.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The container-level security context of every container. */}}
{{- define "bazaar.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* emptyDir volumes for the writable directories of a container; names are derived from the paths. */}}
{{- define "bazaar.writableVolumes" -}}
{{- range .dirs }}
- name: {{ include "bazaar.dirVolumeName" . }}
  emptyDir: {}
{{- end }}
{{- end -}}

{{- define "bazaar.writableMounts" -}}
{{- range .dirs }}
- name: {{ include "bazaar.dirVolumeName" . }}
  mountPath: {{ . }}
{{- end }}
{{- end -}}

{{- define "bazaar.dirVolumeName" -}}
{{- printf "rw%s" (. | replace "/" "-" | replace "_" "-" | replace "." "-") | trunc 63 | trimSuffix "-" -}}
{{- end -}}
