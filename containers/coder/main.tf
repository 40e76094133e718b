# Coder template: a Kubernetes workspace running the Kelpie image, with the desktop as a
# Coder app ("Desktop (Kelpie)") next to the terminal. See README.md.

terraform {
  required_providers {
    coder = {
      source  = "coder/coder"
      version = ">= 2.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.23"
    }
  }
}

provider "coder" {}

variable "use_kubeconfig" {
  type        = bool
  default     = false
  description = "Use ~/.kube/config (true) or the in-cluster service account of the Coder server (false)."
}

variable "namespace" {
  type        = string
  default     = "coder-workspaces"
  description = "Namespace for workspaces (label it pod-security.kubernetes.io/enforce=restricted)."
}

variable "image" {
  type        = string
  default     = "ghcr.io/OWNER/kelpie:latest"
  description = "The Kelpie container image (containers/Dockerfile)."
}

variable "subdomain" {
  type        = bool
  default     = true
  description = "Serve the desktop on its own subdomain (needs Coder's wildcard access URL); false uses a path under the Coder URL."
}

variable "turn_urls" {
  type        = string
  default     = ""
  description = "TURN URLs for WebRTC media, comma separated (e.g. turn:turn.example.org:3478?transport=udp). Coder proxies HTTP only: without TURN, browsers outside the cluster network get media over the WebSocket instead."
}

variable "turn_secret_name" {
  type        = string
  default     = ""
  description = "Kubernetes Secret (in the workspace namespace) whose key turn-secret is coturn's static-auth-secret. Mounted only into a turn-broker sidecar, never into the workspace's own container."
}

provider "kubernetes" {
  config_path = var.use_kubeconfig ? "~/.kube/config" : null
}

data "coder_workspace" "me" {}
data "coder_workspace_owner" "me" {}

data "coder_parameter" "resolution" {
  name         = "resolution"
  display_name = "Screen size"
  type         = "string"
  default      = "1920x1080"
  mutable      = true
  option {
    name  = "1280x720"
    value = "1280x720"
  }
  option {
    name  = "1920x1080"
    value = "1920x1080"
  }
  option {
    name  = "2560x1440"
    value = "2560x1440"
  }
}

data "coder_parameter" "gpu" {
  name         = "gpu"
  display_name = "NVIDIA GPU"
  description  = "Schedule on a GPU node and encode with NVENC."
  type         = "bool"
  default      = "false"
  mutable      = true
}

locals {
  name       = "coder-${lower(data.coder_workspace_owner.me.name)}-${lower(data.coder_workspace.me.name)}"
  app_slug   = "desktop"
  gpu        = data.coder_parameter.gpu.value == "true"
  # Path-based apps live under /@owner/workspace.agent/apps/slug/ (Kelpie works whether or not
  # the proxy strips that prefix); subdomain apps at the root of their own host.
  base_path = var.subdomain ? "/" : "/@${data.coder_workspace_owner.me.name}/${data.coder_workspace.me.name}.main/apps/${local.app_slug}/"
  labels = {
    "app.kubernetes.io/name"      = "kelpie"
    "app.kubernetes.io/component" = "coder-workspace"
    "com.coder.workspace.id"      = data.coder_workspace.me.id
    "com.coder.user.username"     = data.coder_workspace_owner.me.name
  }
}

resource "coder_agent" "main" {
  os   = "linux"
  arch = "amd64"
  dir  = "/home/kelpie"

  # Coder's app proxy authenticates the workspace owner (share = "owner"), so Kelpie listens
  # on the pod's loopback only, where --auth none is allowed, and is reachable solely through
  # the agent. The entrypoint prepares XDG_RUNTIME_DIR and PulseAudio first.
  startup_script_behavior = "non-blocking"
  startup_script          = <<-EOT
    #!/bin/sh
    set -eu
    # Kelpie is restarted when it exits (X lost, an unrecoverable pipeline): the workspace
    # keeps running, so nothing else would. The pause grows to 30 s while it keeps failing
    # and resets after a run of a minute or more; every exit is in /tmp/kelpie.log.
    nohup sh -c '
      pause=1
      while :; do
        started=$(date +%s)
        /usr/local/bin/kelpie-entrypoint --listen 127.0.0.1:8080 --auth none --base-path "$0"
        code=$?
        if [ $(( $(date +%s) - started )) -ge 60 ]; then pause=1; fi
        echo "kelpie-supervisor: kelpie exited with status $code; restarting in $pause s"
        sleep "$pause"
        pause=$(( pause * 2 > 30 ? 30 : pause * 2 ))
      done' "${local.base_path}" >/tmp/kelpie.log 2>&1 &
  EOT

  env = {
    KELPIE_SIZE = data.coder_parameter.resolution.value
  }

  metadata {
    display_name = "Desktop health"
    key          = "kelpie_health"
    script       = "curl -fsS http://127.0.0.1:8080/health >/dev/null && echo streaming || echo down"
    interval     = 10
    timeout      = 3
  }
}

resource "coder_app" "kelpie" {
  agent_id     = coder_agent.main.id
  slug         = local.app_slug
  display_name = "Desktop (Kelpie)"
  url          = "http://127.0.0.1:8080/"
  icon         = "/icon/desktop.svg"
  subdomain    = var.subdomain
  share        = "owner"
  order        = 1

  healthcheck {
    url       = "http://127.0.0.1:8080/health"
    interval  = 5
    threshold = 24
  }
}

resource "kubernetes_persistent_volume_claim" "home" {
  metadata {
    name      = "${local.name}-home"
    namespace = var.namespace
    labels    = local.labels
  }
  wait_until_bound = false
  spec {
    access_modes = ["ReadWriteOnce"]
    resources {
      requests = {
        storage = "10Gi"
      }
    }
  }
  lifecycle {
    ignore_changes = all
  }
}

resource "kubernetes_deployment" "main" {
  count            = data.coder_workspace.me.start_count
  wait_for_rollout = false
  depends_on       = [kubernetes_persistent_volume_claim.home]

  metadata {
    name      = local.name
    namespace = var.namespace
    labels    = local.labels
  }

  spec {
    replicas = 1
    strategy {
      type = "Recreate"
    }
    selector {
      match_labels = {
        "com.coder.workspace.id" = data.coder_workspace.me.id
      }
    }
    template {
      metadata {
        labels = local.labels
      }
      spec {
        automount_service_account_token = false
        enable_service_links            = false
        node_selector                   = local.gpu ? { "nvidia.com/gpu.present" = "true" } : null

        security_context {
          run_as_non_root = true
          run_as_user     = 1000
          run_as_group    = 1000
          fs_group        = 1000
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        dynamic "toleration" {
          for_each = local.gpu ? [1] : []
          content {
            key      = "nvidia.com/gpu"
            operator = "Exists"
            effect   = "NoSchedule"
          }
        }

        container {
          name              = "workspace"
          image             = var.image
          image_pull_policy = "IfNotPresent"
          # tini reaps the desktop session's orphans; the agent then starts Kelpie.
          command = ["/usr/bin/tini", "--", "sh", "-c", coder_agent.main.init_script]

          env {
            name  = "CODER_AGENT_TOKEN"
            value = coder_agent.main.token
          }
          env {
            name  = "KELPIE_ENCODER"
            value = local.gpu ? "nvh264" : "auto"
          }
          dynamic "env" {
            for_each = local.gpu ? [1] : []
            content {
              name  = "NVIDIA_DRIVER_CAPABILITIES"
              value = "compute,utility,video,graphics"
            }
          }
          dynamic "env" {
            for_each = var.turn_urls != "" ? [1] : []
            content {
              name  = "KELPIE_TURN_URLS"
              value = var.turn_urls
            }
          }
          # The workspace's user can read everything this container holds, so coturn's
          # shared secret stays in the turn-broker sidecar below; Kelpie asks it for one
          # time-limited credential per viewer.
          dynamic "env" {
            for_each = var.turn_secret_name != "" ? [1] : []
            content {
              name  = "KELPIE_TURN_BROKER"
              value = "http://127.0.0.1:3479/turn"
            }
          }

          security_context {
            run_as_non_root            = true
            allow_privilege_escalation = false
            privileged                 = false
            read_only_root_filesystem  = true
            capabilities {
              drop = ["ALL"]
            }
          }

          resources {
            requests = {
              cpu    = "1"
              memory = "2Gi"
            }
            limits = merge(
              { cpu = "4", memory = "8Gi" },
              local.gpu ? { "nvidia.com/gpu" = "1" } : {}
            )
          }

          volume_mount {
            name       = "home"
            mount_path = "/home/kelpie"
          }
          volume_mount {
            name       = "tmp"
            mount_path = "/tmp"
          }
          volume_mount {
            name       = "dshm"
            mount_path = "/dev/shm"
          }
        }

        # Mints TURN credentials from coturn's secret, which only this container mounts,
        # under a UID of its own (the pod does not share its process namespace).
        dynamic "container" {
          for_each = var.turn_secret_name != "" ? [1] : []
          content {
            name              = "turn-broker"
            image             = var.image
            image_pull_policy = "IfNotPresent"
            command           = ["/usr/local/bin/kelpie-turn-broker"]
            env {
              name  = "KELPIE_TURN_SECRET_FILE"
              value = "/etc/kelpie/turn/turn-secret"
            }
            env {
              name  = "KELPIE_TURN_BROKER_LABEL"
              value = local.name
            }
            security_context {
              run_as_user                = 1001
              run_as_non_root            = true
              allow_privilege_escalation = false
              privileged                 = false
              read_only_root_filesystem  = true
              capabilities {
                drop = ["ALL"]
              }
            }
            resources {
              requests = { cpu = "10m", memory = "16Mi" }
              limits   = { cpu = "100m", memory = "64Mi" }
            }
            volume_mount {
              name       = "turn-secret"
              mount_path = "/etc/kelpie/turn"
              read_only  = true
            }
          }
        }
        dynamic "volume" {
          for_each = var.turn_secret_name != "" ? [1] : []
          content {
            name = "turn-secret"
            secret {
              secret_name  = var.turn_secret_name
              default_mode = "0440"
            }
          }
        }

        volume {
          name = "home"
          persistent_volume_claim {
            claim_name = kubernetes_persistent_volume_claim.home.metadata[0].name
          }
        }
        volume {
          name = "tmp"
          empty_dir {
            size_limit = "4Gi"
          }
        }
        volume {
          name = "dshm"
          empty_dir {
            medium     = "Memory"
            size_limit = "1Gi"
          }
        }
      }
    }
  }
}
