// Package harness pins the KFP backend packages the harness test (../harness) runs.
package harness

import (
	_ "github.com/kubeflow/pipelines/backend/src/apiserver/template"
	_ "github.com/kubeflow/pipelines/backend/src/v2/compiler/argocompiler"
	_ "github.com/kubeflow/pipelines/backend/src/v2/driver"
)
