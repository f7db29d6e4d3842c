/* The properties panel's "CSI" group: this product's extensions edited as fields, so
 * nobody writes the spiffworkflow XML by hand. What the pack offers (roles, services)
 * and the variables known at a flow come from the `csiContext` service, which the page
 * fills from GET …/context and from each lint answer. */
import { SelectEntry, TextFieldEntry, isSelectEntryEdited, isTextFieldEntryEdited } from '@bpmn-io/properties-panel';
import { useService } from 'bpmn-js-properties-panel';
import { useEffect, useState } from '@bpmn-io/properties-panel/preact/hooks';
import { getBusinessObject, is } from 'bpmn-js/lib/util/ModelUtil';

import {
  getCondition, getOperation, getProperty, recordStatuses, setCondition, setOperation, setProperty
} from './extensions';

const LOW_PRIORITY = 400;

// ISO 8601 durations as the engine reads them (engine.workflow.durations): P3D, PT4H, P1W…
const DURATION = /^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$/;

function PropertyField({ element, id, name, label, description, validate }) {
  const translate = useService('translate');
  const debounce = useService('debounceInput');
  const bpmnFactory = useService('bpmnFactory');
  const modeling = useService('modeling');
  return TextFieldEntry({
    element,
    id,
    label: translate(label),
    description: description && translate(description),
    debounce,
    getValue: () => getProperty(element, name),
    setValue: (value) => setProperty(element, name, value, { bpmnFactory, modeling }),
    validate: validate && ((value) => validate(value, translate))
  });
}

function validateDuration(value, translate) {
  const text = (value || '').trim();
  if (text && !DURATION.test(text)) {
    return translate('Not an ISO 8601 duration (e.g. P3D, PT4H)');
  }
  return null;
}

function DueIn({ element, id }) {
  return PropertyField({
    element, id, name: 'due_in', label: 'Due in',
    description: 'ISO 8601 duration, e.g. P3D', validate: validateDuration
  });
}

function Assignee({ element, id }) {
  return PropertyField({
    element, id, name: 'assignee', label: 'Assignee expression',
    description: 'A variable holding a username, e.g. process_owner'
  });
}

function NameEn({ element, id }) {
  return PropertyField({ element, id, name: 'name_en', label: 'English name' });
}

function RecordStatus({ element, id }) {
  const translate = useService('translate');
  const bpmnFactory = useService('bpmnFactory');
  const modeling = useService('modeling');
  const statuses = recordStatuses(element);
  if (!statuses.length) {
    return <PropertyField element={ element } id={ id } name="record_status" label="Record status" />;
  }
  return <SelectEntry { ...{
    element,
    id,
    label: translate('Record status'),
    getValue: () => getProperty(element, 'record_status'),
    setValue: (value) => setProperty(element, 'record_status', value, { bpmnFactory, modeling }),
    getOptions: () => {
      const current = getProperty(element, 'record_status');
      const options = [ { value: '', label: translate('(unchanged)') } ]
        .concat(statuses.map((s) => ({ value: s.key, label: `${s.key} · ${s.label}` })));
      if (current && !statuses.some((s) => s.key === current)) {
        options.push({ value: current, label: `${current} (${translate('not declared')})` });
      }
      return options;
    }
  } } />;
}

function Operation({ element, id }) {
  const translate = useService('translate');
  const bpmnFactory = useService('bpmnFactory');
  const modeling = useService('modeling');
  const context = useService('csiContext');
  return SelectEntry({
    element,
    id,
    label: translate('Operation'),
    getValue: () => getOperation(element),
    setValue: (value) => setOperation(element, value, { bpmnFactory, modeling }),
    getOptions: () => {
      const current = getOperation(element);
      const services = context.services || [];
      const options = [ { value: '', label: translate('(choose a service)') } ]
        .concat(services.map((name) => ({ value: name, label: name })));
      if (current && services.indexOf(current) === -1) {
        options.push({ value: current, label: `${current} (${translate('not registered')})` });
      }
      return options;
    }
  });
}

function roleOfName(roles, name) {
  const text = (name || '').trim();
  return roles.find((r) => text && (r.key === text || r['zh-CN'] === text || r.en === text));
}

function LaneRole({ element, id }) {
  const translate = useService('translate');
  const modeling = useService('modeling');
  const context = useService('csiContext');
  const roles = context.roles || [];
  return SelectEntry({
    element,
    id,
    label: translate('Role'),
    description: translate('The lane\'s name names the role whose inbox gets its tasks'),
    getValue: () => {
      const role = roleOfName(roles, getBusinessObject(element).get('name'));
      return role ? role.key : '';
    },
    setValue: (key) => {
      const role = roles.find((r) => r.key === key);
      if (role) {
        modeling.updateProperties(element, { name: role['zh-CN'] || role.key });
      }
    },
    getOptions: () => {
      const name = getBusinessObject(element).get('name');
      const options = roles.map((r) => ({ value: r.key, label: `${r['zh-CN']} · ${r.en} (${r.key})` }));
      if (!roleOfName(roles, name)) {
        options.unshift({ value: '', label: name ? `${name} (${translate('not a role')})` : translate('(choose a role)') });
      }
      return options;
    }
  });
}

/** Redraw when the page changes the context (a lint answer with the variables known at
 * each flow, a form made or removed): that happens outside the command stack. */
function useContextChanges(eventBus) {
  const [ , setVersion ] = useState(0);
  useEffect(() => {
    const redraw = () => setVersion((v) => v + 1);
    eventBus.on('csi.context.changed', redraw);
    return () => eventBus.off('csi.context.changed', redraw);
  }, [ eventBus ]);
}

/** The variables the server says are known at a flow (or at the gateway it leaves). */
function knownAt(context, element) {
  const known = context.variables || {};
  const bo = getBusinessObject(element);
  const source = bo.get('sourceRef');
  return known[bo.id] || (source && known[source.id]) || [];
}

function Condition({ element, id }) {
  const translate = useService('translate');
  const debounce = useService('debounceInput');
  const bpmnFactory = useService('bpmnFactory');
  const modeling = useService('modeling');
  const eventBus = useService('eventBus');
  const context = useService('csiContext');
  useContextChanges(eventBus);
  const variables = knownAt(context, element);
  const insert = (name) => {
    const current = getCondition(element);
    setCondition(element, current ? `${current} ${name}` : name, { bpmnFactory, modeling });
  };
  return (
    <div class="csi-condition">
      {TextFieldEntry({
        element,
        id,
        label: translate('Condition'),
        description: translate('An expression, e.g. phase == \'monitoring\''),
        debounce,
        getValue: () => getCondition(element),
        setValue: (value) => setCondition(element, value, { bpmnFactory, modeling })
      })}
      <div class="csi-variables" data-flow={ element.id }>
        <span class="csi-variables-label">{ translate('Variables known here') }</span>
        { variables.length
          ? variables.map((v) => (
            <button type="button" class="csi-variable" data-name={ v.name }
              title={ [ v.title, v.type ].filter(Boolean).join(' · ') }
              onClick={ () => insert(v.name) }>{ v.name }</button>
          ))
          : <span class="csi-variables-none">{ translate('none known yet') }</span> }
      </div>
    </div>
  );
}

/** The user task's form: whether it has one, and the way to the form editor. */
function FormLink({ element, id }) {
  const translate = useService('translate');
  const eventBus = useService('eventBus');
  const context = useService('csiContext');
  useContextChanges(eventBus);
  const hasForm = !!(context.formOf && context.formOf(element.id));
  return (
    <div class="bio-properties-panel-entry csi-form-link" data-entry-id={ id }>
      <span class="bio-properties-panel-label">{ translate('Form') }</span>
      <p class={ hasForm ? 'csi-form-state' : 'csi-form-state csi-form-missing' }>
        { hasForm ? translate('This task has a form.') : translate('This task has no form yet.') }
      </p>
      <button type="button" class="csi-form-open" onClick={ () => eventBus.fire('csi.form.open', { element }) }>
        { hasForm ? translate('Edit the form') : translate('Create the form') }
      </button>
    </div>
  );
}

function isConditional(element) {
  if (!is(element, 'bpmn:SequenceFlow')) {
    return false;
  }
  const source = getBusinessObject(element).get('sourceRef');
  return !!source && !is(source, 'bpmn:ParallelGateway') && !is(source, 'bpmn:EventBasedGateway');
}

function entriesFor(element) {
  const entries = [];
  if (is(element, 'bpmn:UserTask')) {
    entries.push(
      { id: 'csi-due-in', element, component: DueIn, isEdited: isTextFieldEntryEdited },
      { id: 'csi-assignee', element, component: Assignee, isEdited: isTextFieldEntryEdited },
      { id: 'csi-record-status', element, component: RecordStatus, isEdited: isSelectEntryEdited },
      { id: 'csi-form', element, component: FormLink }
    );
  }
  if (is(element, 'bpmn:ServiceTask')) {
    entries.push({ id: 'csi-operation', element, component: Operation, isEdited: isSelectEntryEdited });
  }
  if (is(element, 'bpmn:Lane')) {
    entries.push({ id: 'csi-role', element, component: LaneRole, isEdited: isSelectEntryEdited });
  }
  if (isConditional(element)) {
    entries.push({ id: 'csi-condition', element, component: Condition, isEdited: isTextFieldEntryEdited });
  }
  if (is(element, 'bpmn:FlowNode') || is(element, 'bpmn:SequenceFlow')) {
    entries.push({ id: 'csi-name-en', element, component: NameEn, isEdited: isTextFieldEntryEdited });
  }
  return entries;
}

export default function CsiPropertiesProvider(propertiesPanel, translate) {
  this.getGroups = function(element) {
    return function(groups) {
      const entries = entriesFor(element);
      if (entries.length) {
        groups.splice(1, 0, { id: 'csi', label: translate('CSI'), entries });
      }
      return groups;
    };
  };
  propertiesPanel.registerProvider(LOW_PRIORITY, this);
}

CsiPropertiesProvider.$inject = [ 'propertiesPanel', 'translate' ];
