/* placeholder: being written */
#include "mqtest.h"
