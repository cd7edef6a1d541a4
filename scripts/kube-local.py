#!/usr/bin/env python3
"""Turns deploy/kubernetes into what `podman kube play` can run on one
machine (make cluster-podman), and prints it as one YAML stream.

podman runs ConfigMaps, Secrets and Pods but ignores Services, so the
Deployment's pod template becomes one Pod per replica on the host's
network, each on its own port, peering by a static --peers list instead of
the headless Service; nginx on the host stands in for the Service. All the
rest comes from the manifests unchanged: image, args, envFrom, security
context, probes, volumes.

podman 4.3 (Debian 12) does not play Secrets (it crashes on a secret
volume), so the Secret becomes what it would hold: the store's keys as
plain env values, and the cluster key as a hostPath directory holding the
file `cluster-key`. There is no API or invoke token, so that the README's
curl session works as it does against `make run`.

The ConfigMap's NATS address (the queue of async calls) becomes QUEUE_URL,
the NATS server make cluster runs on the host.

usage: kube-local.py MANIFESTS_DIR REPLICAS BASE_PORT S3_ENDPOINT CREDENTIALS_FILE SECRETS_DIR [QUEUE_URL]
"""
import os
import sys

import yaml


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def main():
    manifests, replicas, base, endpoint, credentials, secrets_dir = sys.argv[1:7]
    queue = sys.argv[7] if len(sys.argv) > 7 else None
    replicas, base = int(replicas), int(base)
    docs = []
    for name in ("configmap.yaml", "secret.example.yaml", "deployment.yaml"):
        docs += load(os.path.join(manifests, name))
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    ports = [base + i for i in range(replicas)]

    data = config["data"]
    data.pop("FAAS_PEERS_DNS", None)
    data.pop("FAAS_PORT", None)
    data.update(
        FAAS_PEERS=",".join(f"http://127.0.0.1:{p}" for p in ports),
        FAAS_S3_ENDPOINT=endpoint,
        FAAS_STORE="s3://faas",
        FAAS_HOST="127.0.0.1",
        FAAS_DRAIN_DELAY_MS="1000",
        FAAS_GRACE_MS="5000",
    )
    if queue:
        data["FAAS_QUEUE"] = queue
    else:
        data.pop("FAAS_QUEUE", None)

    values = dict(line.split("=", 1) for line in open(credentials).read().split())

    template = deployment["spec"]["template"]
    pods = []
    for i, port in enumerate(ports):
        # Pods on the host network still have their own /tmp (sockets).
        spec = yaml.safe_load(yaml.safe_dump(template["spec"]))
        spec["hostNetwork"] = True
        # podman 4.3 fails on init containers ("cannot remove container ...
        # as it is running"): read the image's interpreters where they are
        # (built on this machine, so their artifacts are current).
        spec.pop("initContainers", None)
        spec["volumes"] = [v for v in spec["volumes"] if v["name"] != "runtimes"]
        for volume in spec["volumes"]:
            if "secret" in volume:
                del volume["secret"]
                volume["hostPath"] = {"path": secrets_dir, "type": "Directory"}
        image = os.environ.get("CLUSTER_IMAGE")
        for container in spec.get("initContainers", []) + spec["containers"]:
            if image:
                container["image"] = image
        # podman 4.3 makes each emptyDir a named volume, shared by every pod
        # that names it, and ignores subPath: one volume per pod and mount,
        # named faas-cluster-* (cluster.sh removes them when it stops).
        empty = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        spec["volumes"] = [v for v in spec["volumes"] if v["name"] not in empty]
        for container in spec["containers"]:
            for mount in container["volumeMounts"]:
                if mount["name"] in empty:
                    sub = mount.pop("subPath", None)
                    mount["name"] = f"faas-cluster-{i}-{mount['name']}" + (f"-{sub}" if sub else "")
                    spec["volumes"].append({"name": mount["name"], "emptyDir": {}})
        for container in spec["containers"]:
            container["args"] = [
                "--runtimes-dir=/opt/faas/runtimes" if a.startswith("--runtimes-dir") else a
                for a in container["args"]
                if not a.startswith(("--api-token-file", "--invoke-token-file"))
            ]
            container["volumeMounts"] = [
                m for m in container["volumeMounts"] if m["name"] != "runtimes"
            ]
            env = []
            for e in container["env"]:
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    env.append({"name": e["name"], "value": values[ref["key"]]})
                elif e["name"] != "FAAS_REPLICA_NAME":
                    env.append(e)
            container["env"] = env + [
                {"name": "FAAS_REPLICA_NAME", "value": f"faas-{i}"},
                {"name": "FAAS_PORT", "value": str(port)},
            ]
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                if probe in container:
                    container[probe]["httpGet"]["port"] = port
            # On the host's network; podman 4.3 refuses port mappings there.
            container.pop("ports", None)
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"faas-{i}", "labels": dict(template["metadata"]["labels"])},
                "spec": spec,
            }
        )
    yaml.safe_dump_all([config] + pods, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
