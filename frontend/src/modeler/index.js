/* The modeler bundle: bpmn-js with the properties panel, our CSI group, bpmnlint
 * (recommended rules plus ours, packed at build time) and the semantic differ.
 * Exposes window.CsiModeler; the page's own script (web/static/js/modeler.js) drives it. */
import BpmnModeler from 'bpmn-js/lib/Modeler';
import { BpmnModdle } from 'bpmn-moddle';
import { BpmnPropertiesPanelModule, BpmnPropertiesProviderModule } from 'bpmn-js-properties-panel';
import lintModule from 'bpmn-js-bpmnlint';
import { diff } from 'bpmn-js-differ';

import lintConfig from 'csi-bpmnlint-config';
import spiffworkflow from './spiffworkflow.json';
import CsiPropertiesProvider from './properties.jsx';
import { createTranslate } from './translate';

const VERSIONS = __CSI_MODELER_VERSIONS__;

/**
 * @param {Object} options
 * @param {Element} options.container the canvas
 * @param {Element} options.propertiesParent where the properties panel goes
 * @param {Object} options.context {roles, services, variables, formOf(taskId)} (kept by
 *   reference: the page updates it, e.g. `variables` after each lint, and fires
 *   `csi.context.changed`)
 * @param {Object} [options.strings] translations of bpmn-js's and our strings
 */
function create(options) {
  return new BpmnModeler({
    container: options.container,
    // The CSI group is what a process owner edits most: open from the start.
    propertiesPanel: {
      parent: options.propertiesParent,
      layout: { groups: { general: { open: true }, csi: { open: true } } }
    },
    linting: { bpmnlint: lintConfig, active: true },
    moddleExtensions: { spiffworkflow },
    additionalModules: [
      BpmnPropertiesPanelModule,
      BpmnPropertiesProviderModule,
      lintModule,
      {
        __init__: [ 'csiPropertiesProvider' ],
        csiPropertiesProvider: [ 'type', CsiPropertiesProvider ],
        csiContext: [ 'value', options.context || {} ],
        translate: [ 'value', createTranslate(options.strings) ]
      }
    ]
  });
}

/**
 * The semantic difference between `baselineXml` and the modeler's diagram:
 * {added, removed, changed: [{element, properties}], layout} by element id.
 */
async function compare(modeler, baselineXml) {
  const moddle = new BpmnModdle({ spiffworkflow });
  const { rootElement } = await moddle.fromXML(baselineXml, 'bpmn:Definitions');
  const found = diff(rootElement, modeler.getDefinitions());
  return {
    added: Object.keys(found._added),
    removed: Object.keys(found._removed),
    changed: Object.keys(found._changed).map((id) => ({
      element: id,
      properties: Object.keys(found._changed[id].attrs || {})
    })),
    layout: Object.keys(found._layoutChanged)
  };
}

window.CsiModeler = { create, compare, versions: VERSIONS };
